"""Ready collectors for the support bundle: install files, cluster state and log tails, Helm history, JSON."""

# Each takes its inputs explicitly, so the front end decides where they come from (the install folder,
# the profile's kubeconfig, the Helm backend). Kubernetes objects are summarised, never dumped whole:
# a pod's spec carries environment values, which have no business in a bundle.

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hfwizard.daytwo.bundle import Collected, Collector, FileData, describe_error, to_json

# What an install folder holds that helps support, and what it must never give away even masked:
# the kubeconfig (cluster credentials) and the sandbox emulator's state (every Secret's data).
INSTALL_INCLUDE = ("profile.yaml", "*.jsonl", "*.log", "logs/*", "logs/**/*", "preflight*.json",
                   "lock-holder.json", "draft.yaml", "wizard.json", "status.json")
INSTALL_EXCLUDE = ("kubeconfig*", "cluster-state.json*", "*.key", "*.pem", "*.lock", ".*")
LOG_TAIL_LINES = 500
LOG_LIMIT_BYTES = 512 * 1024
REQUEST_TIMEOUT = 10.0


def install_dir_collector(install_dir: Path, *, include: Iterable[str] = INSTALL_INCLUDE,
                          exclude: Iterable[str] = INSTALL_EXCLUDE, name: str = "install") -> Collector:
    """The install folder's journal, logs and profile (the profile holds secret references only)."""
    include, exclude = tuple(include), tuple(exclude)

    def collect() -> Collected:
        if not install_dir.is_dir():
            raise FileNotFoundError(f"no install folder at {install_dir}")
        out = Collected()
        for path in sorted(install_dir.rglob("*")):
            rel = path.relative_to(install_dir).as_posix()
            if not path.is_file() or path.is_symlink():
                continue
            if any(fnmatch.fnmatch(part, pat) for part in rel.split("/") for pat in exclude):
                continue
            if not any(fnmatch.fnmatch(rel, pat) for pat in include):
                continue
            try:
                out.files[rel] = path.read_bytes()
            except OSError as exc:
                out.problems.append(f"{rel}: {type(exc).__name__}: {exc.strerror or exc}")
        return out

    return Collector(name, collect)


def json_collector(name: str, filename: str, produce: Callable[[], Any], *, timeout: float | None = None) -> Collector:
    """One JSON file from `produce()` (preflight results, the install's status...)."""
    return Collector(name, lambda: {filename: to_json(produce())}, timeout)


def helm_history_collector(releases: Iterable[str], history: Callable[[str], Any], *,
                           timeout: float | None = None) -> Collector:
    """`history(release)` for each release (a list of revisions, e.g. the Helm backend's ReleaseInfo),
    one file per release; a release whose history fails is named, the others still collected."""
    wanted = list(dict.fromkeys(releases))

    def collect() -> Collected:
        out = Collected()
        for release in wanted:
            try:
                out.files[f"{release}.json"] = to_json(history(release))
            except Exception as exc:
                out.problems.append(f"{release}: {describe_error(exc)}")
        return out

    return Collector("helm", collect, timeout)


def helm_records_collector(api_client: Any, namespace: str, *, request_timeout: float = REQUEST_TIMEOUT) -> Collector:
    """Helm's release records in the cluster, by their labels only (release, revision, status, time):
    the history even when Helm itself cannot run. The records' data (the whole release) stays out."""
    from kubernetes import client

    def collect() -> dict[str, FileData]:
        listing = client.CoreV1Api(api_client).list_namespaced_secret(
            namespace, label_selector="owner=helm", _request_timeout=request_timeout)
        rows = []
        for secret in listing.items:
            labels = secret.metadata.labels or {}
            rows.append({"release": labels.get("name"), "revision": int(labels.get("version") or 0),
                         "status": labels.get("status"), "modifiedAt": labels.get("modifiedAt"),
                         "record": secret.metadata.name})
        rows.sort(key=lambda r: (str(r["release"]), r["revision"]))
        return {"release-records.json": to_json(rows)}

    return Collector("helm-records", collect)


def kubernetes_collectors(api_client: Any, namespace: str, *, tail_lines: int = LOG_TAIL_LINES,
                          log_limit_bytes: int = LOG_LIMIT_BYTES,
                          request_timeout: float = REQUEST_TIMEOUT) -> list[Collector]:
    """Collectors over one `kubernetes.client.ApiClient`: version, nodes, pods (with their conditions
    and container states), the namespace's events, and each container's log tail."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    plain = api_client.sanitize_for_serialization
    opts = {"_request_timeout": request_timeout}

    def version() -> dict[str, FileData]:
        return {"version.json": to_json(plain(client.VersionApi(api_client).get_code(**opts)))}

    def nodes() -> dict[str, FileData]:
        items = plain(core.list_node(**opts)).get("items") or []
        return {"nodes.json": to_json([_node_summary(n) for n in items])}

    def pods() -> dict[str, FileData]:
        items = plain(core.list_namespaced_pod(namespace, **opts)).get("items") or []
        return {"pods.json": to_json([_pod_summary(p) for p in items])}

    def events() -> dict[str, FileData]:
        items = plain(core.list_namespaced_event(namespace, **opts)).get("items") or []
        rows = sorted((_event_summary(e) for e in items), key=lambda e: str(e.get("last") or ""))
        return {"events.json": to_json(rows)}

    def logs() -> Collected:
        items = plain(core.list_namespaced_pod(namespace, **opts)).get("items") or []
        return _log_tails(core, namespace, items, tail_lines, log_limit_bytes, request_timeout)

    return [Collector("kubernetes/version", version), Collector("kubernetes/nodes", nodes),
            Collector("kubernetes/pods", pods), Collector("kubernetes/events", events),
            Collector("kubernetes/logs", logs, timeout=max(30.0, 3 * request_timeout))]


def _log_tails(core: Any, namespace: str, pods: list[dict[str, Any]], tail_lines: int, limit_bytes: int,
               request_timeout: float) -> Collected:
    """Each container's log tail (and the previous run's, for a container that restarted), four at a
    time; a container whose log cannot be read is named in the problems."""
    asks: list[tuple[str, str, bool]] = []
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            asks.append((name, cs["name"], False))
            if int(cs.get("restartCount") or 0) > 0:
                asks.append((name, cs["name"], True))
        if not status.get("containerStatuses"):
            asks.extend((name, c["name"], False) for c in (pod.get("spec") or {}).get("containers") or [])
    out = Collected()
    deadline = time.monotonic() + 2.5 * request_timeout

    def fetch(ask: tuple[str, str, bool]) -> tuple[str, bytes | None, str]:
        pod, container, previous = ask
        rel = f"{pod}/{container}{'.previous' if previous else ''}.log"
        if time.monotonic() > deadline:
            return rel, None, "not fetched: the collector ran out of time"
        try:
            response = core.read_namespaced_pod_log(
                pod, namespace, container=container, previous=previous, tail_lines=tail_lines,
                limit_bytes=limit_bytes, timestamps=True, _preload_content=False, _request_timeout=request_timeout)
        except Exception as exc:
            return rel, None, describe_error(exc)
        try:
            data = response.data
            kind = str(response.headers.get("Content-Type") or "")
        finally:
            response.release_conn()
        # A log is text; a JSON answer is a server that does not serve logs (it sent an object back).
        if kind.startswith("application/json"):
            return rel, None, "the API server answered with an object, not a log (no log support)"
        return rel, data, ""

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="bundle-logs") as pool:
        for rel, data, problem in pool.map(fetch, asks):
            if data is not None:
                out.files[rel] = data
            else:
                out.problems.append(f"{rel}: {problem}")
    return out


def _conditions(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{k: c.get(k) for k in ("type", "status", "reason", "message", "lastTransitionTime") if c.get(k)}
            for c in (obj.get("status") or {}).get("conditions") or []]


def _node_summary(node: Mapping[str, Any]) -> dict[str, Any]:
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    labels = meta.get("labels") or {}
    info = status.get("nodeInfo") or {}
    return {
        "name": meta.get("name"),
        "roles": sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")),
        "instanceType": labels.get("node.kubernetes.io/instance-type"),
        "zone": labels.get("topology.kubernetes.io/zone"),
        "unschedulable": bool(spec.get("unschedulable")),
        "taints": spec.get("taints") or [],
        "capacity": status.get("capacity"),
        "allocatable": status.get("allocatable"),
        "conditions": _conditions(node),
        "kubelet": info.get("kubeletVersion"),
        "os": info.get("osImage"),
        "runtime": info.get("containerRuntimeVersion"),
    }


def _container_state(cs: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": cs.get("name"), "image": cs.get("image"), "ready": cs.get("ready"),
            "restarts": cs.get("restartCount"), "state": cs.get("state"), "lastState": cs.get("lastState")}


def _pod_summary(pod: Mapping[str, Any]) -> dict[str, Any]:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    return {
        "name": meta.get("name"),
        "owner": [f"{o.get('kind')}/{o.get('name')}" for o in meta.get("ownerReferences") or []],
        "node": spec.get("nodeName"),
        "phase": status.get("phase"),
        "reason": status.get("reason"),
        "message": status.get("message"),
        "started": status.get("startTime"),
        "conditions": _conditions(pod),
        "initContainers": [_container_state(c) for c in status.get("initContainerStatuses") or []],
        "containers": [_container_state(c) for c in status.get("containerStatuses") or []],
        "images": [c.get("image") for c in spec.get("containers") or []],
    }


def _event_summary(event: Mapping[str, Any]) -> dict[str, Any]:
    involved = event.get("involvedObject") or {}
    return {
        "type": event.get("type"),
        "reason": event.get("reason"),
        "object": f"{involved.get('kind')}/{involved.get('name')}",
        "message": event.get("message"),
        "count": event.get("count"),
        "first": event.get("firstTimestamp") or event.get("eventTime"),
        "last": event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp"),
        "source": (event.get("source") or {}).get("component") or event.get("reportingComponent"),
    }
