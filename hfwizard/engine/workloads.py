"""What a Helm release created, from its own manifest: the workloads, Services and Ingresses to follow.

Helm keeps each revision's rendered manifest in its release record (a Secret labelled owner=helm,
name=<release>, version=<revision>; its `release` entry is base64 of gzipped JSON). Reading it through
the API tells progress and verification exactly which objects the release made, whatever the chart
names them (`fullnameOverride`) and whether or not it sets `app.kubernetes.io/instance`. The manifest
can hold rendered Secrets: it is parsed here for kinds and names only, never logged or kept.
Blocking calls: run them in a thread.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from hfwizard.engine.kube import Kube, items

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ManifestObject:
    kind: str
    name: str
    namespace: str


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    desired: int
    ready: int
    missing: bool = False  # listed in the release's manifest, absent from the cluster
    failed: bool = False  # a Job that gave up

    @property
    def is_ready(self) -> bool:
        return not self.missing and not self.failed and self.ready >= self.desired


# (namespace, release) -> (record's resourceVersion, its objects): a poll re-parses only a new revision.
_cache: dict[tuple[str, str], tuple[str, list[ManifestObject]]] = {}


def parse_manifest(text: str, namespace: str) -> list[ManifestObject]:
    """Kind, name and namespace of each object in a rendered manifest (Helm's `---`-joined YAML)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out: list[ManifestObject] = []
    for doc in yaml.load_all(text, Loader=loader):
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        meta = doc.get("metadata") or {}
        if doc["kind"].endswith("List"):  # a v1 List: its items are the objects
            for item in doc.get("items") or []:
                m = item.get("metadata") or {}
                out.append(ManifestObject(str(item.get("kind")), str(m.get("name")),
                                          str(m.get("namespace") or namespace)))
            continue
        out.append(ManifestObject(str(doc["kind"]), str(meta.get("name")), str(meta.get("namespace") or namespace)))
    return out


def decode_record(data: str) -> dict[str, Any]:
    """A Helm release record's `release` entry (as the API returns it) as the release's JSON."""
    raw = base64.b64decode(base64.b64decode(data))
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return dict(json.loads(raw))


def release_objects(kube: Kube, namespace: str, release: str) -> list[ManifestObject] | None:
    """The objects of the release's latest revision; None when Helm has no record of it in Secrets."""
    records = items(kube.core.list_namespaced_secret, namespace, label_selector=f"owner=helm,name={release}")
    versioned = [(int(v), rec) for rec in records
                 if (v := str((rec["metadata"].get("labels") or {}).get("version", ""))).isdigit()]
    if not versioned:
        return None
    rec = max(versioned, key=lambda pair: pair[0])[1]
    key = (namespace, release)
    stamp = f"{rec['metadata'].get('name')}@{rec['metadata'].get('resourceVersion')}"
    cached = _cache.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    entry = (rec.get("data") or {}).get("release")
    objects = parse_manifest(str(decode_record(entry).get("manifest") or ""), namespace) if entry else []
    _cache[key] = (stamp, objects)
    return objects


# Lists shared by the releases that follow their workloads at the same time (eight at once list the same
# namespace's Deployments every poll): per client, (kind, namespace) -> (monotonic time, objects by name).
_recent: weakref.WeakKeyDictionary[Kube, dict[tuple[str, str], tuple[float, dict[str, dict[str, Any]]]]] = (
    weakref.WeakKeyDictionary())
_recent_lock = threading.Lock()


def _listed(kube: Kube, kind: str, namespace: str, max_age: float = 0.0) -> dict[str, dict[str, Any]]:
    """The objects of `kind` in `namespace` by name; a list made less than `max_age` seconds ago will do."""
    if max_age > 0:
        with _recent_lock:
            hit = _recent.get(kube, {}).get((kind, namespace))
        if hit is not None and time.monotonic() - hit[0] < max_age:
            return hit[1]
    taken = time.monotonic()
    found = _list(kube, kind, namespace)
    with _recent_lock:
        _recent.setdefault(kube, {})[(kind, namespace)] = (taken, found)
    return found


def _list(kube: Kube, kind: str, namespace: str) -> dict[str, dict[str, Any]]:
    from kubernetes import client

    batch = client.BatchV1Api(kube.api_client)
    lister = {"Deployment": kube.apps.list_namespaced_deployment,
              "StatefulSet": kube.apps.list_namespaced_stateful_set,
              "DaemonSet": kube.apps.list_namespaced_daemon_set,
              "Job": batch.list_namespaced_job,
              "Service": kube.core.list_namespaced_service,
              "Ingress": kube.net.list_namespaced_ingress}[kind]
    return {item["metadata"]["name"]: item for item in items(lister, namespace)}


def _state(kind: str, name: str, item: dict[str, Any] | None) -> Workload:
    if item is None:
        return Workload(kind, name, 1, 0, missing=True)
    spec, status = item.get("spec") or {}, item.get("status") or {}
    stale = int(status.get("observedGeneration") or 0) < int(item["metadata"].get("generation") or 0)
    if kind == "Job":
        desired = int(spec.get("completions") or 1)
        failed = any(c.get("type") == "Failed" and c.get("status") == "True" for c in status.get("conditions") or [])
        return Workload(kind, name, desired, min(int(status.get("succeeded") or 0), desired), failed=failed)
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled") or 0)
        ready = 0 if stale else int(status.get("numberReady") or 0)
        return Workload(kind, name, desired, min(ready, desired))
    desired = 1 if spec.get("replicas") is None else int(spec["replicas"])
    ready = 0 if stale else int(status.get("readyReplicas") or 0)
    return Workload(kind, name, desired, min(ready, desired))


def workload_states(kube: Kube, objects: list[ManifestObject], max_age: float = 0.0) -> list[Workload]:
    """The readiness of each workload among `objects` (one list call per kind and namespace; with `max_age`,
    a list another release made that recently is shared: for progress, never for verification)."""
    out: list[Workload] = []
    wanted = sorted({(o.kind, o.namespace) for o in objects if o.kind in WORKLOAD_KINDS})
    for kind, ns in wanted:
        found = _listed(kube, kind, ns, max_age)
        out += [_state(kind, o.name, found.get(o.name)) for o in objects if o.kind == kind and o.namespace == ns]
    return sorted(out, key=lambda w: (w.kind, w.name))


def objects_of(kube: Kube, kind: str, objects: list[ManifestObject]) -> list[dict[str, Any]]:
    """The cluster's copies of the objects of `kind` among `objects` (missing ones left out)."""
    out: list[dict[str, Any]] = []
    for ns in sorted({o.namespace for o in objects if o.kind == kind}):
        found = _listed(kube, kind, ns)
        out += [found[o.name] for o in objects if o.kind == kind and o.namespace == ns and o.name in found]
    return out


def pod_events(kube: Kube, namespace: str, objects: list[ManifestObject], limit: int = 10) -> list[str]:
    """Why the unready pods of these workloads wait (the pods they select), and their last warnings."""
    selectors = []
    for kind in WORKLOAD_KINDS:
        for item in objects_of(kube, kind, objects):
            spec = item.get("spec") or {}
            labels = (spec.get("selector") or {}).get("matchLabels") or \
                ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if labels:
                selectors.append(dict(labels))
    if not selectors:
        return []
    pods = [p for p in items(kube.core.list_namespaced_pod, namespace)
            if any(all((p["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items()) for sel in selectors)]
    return kube.pod_problems(namespace, pods, limit)


def progress_text(loads: list[Workload]) -> str:
    waiting = [f"{w.name} {w.ready}/{w.desired}" for w in loads if not w.is_ready]
    return ("waiting for " + ", ".join(waiting[:4]) + (" ..." if len(waiting) > 4 else "")) if waiting else "all ready"
