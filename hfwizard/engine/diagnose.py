"""Why a release's pods are not ready: one line per cause, read from pods and events, with what to change.

The input is what any cluster gives: the pods' spec and status (conditions, container states) and the
namespace's Warning events in kube-scheduler's and the kubelet's own words (FailedScheduling, FailedMount,
CreateContainerConfigError, FailedToRetrieveImagePullSecret, ErrImagePull / ImagePullBackOff,
CrashLoopBackOff). Each cause becomes a `Diagnosis` naming the workload, what keeps it back and the
profile field or module to change. Pure functions over plain JSON, so the same code judges the emulator
and a real cluster; `release_diagnosis` does the reading (blocking: call it in a thread).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hfwizard.engine.kube import Kube, items, pod_ready
from hfwizard.engine.workloads import WORKLOAD_KINDS, ManifestObject, objects_of

JSON = dict[str, Any]

# Secrets the install writes from profile fields: a missing one names the field that feeds it.
SECRET_FIELDS: dict[str, str] = {
    "highflame-registry-secret": "images.pullSecret",
    "highflame-license": "platform.license.jwt and platform.license.publicKey",
    "highflame-redis-cert": "redis.caCert (with redis.tls)",
    "highflame-gcp-cred": "platform.gcpCredential",
    "highflame-goff": "platform.featureFlags",
    "highflame-tls": "ingress.tls.certificate and ingress.tls.privateKey",
}
_FAILED = re.compile(r"^0/(\d+) nodes are available: (.*?)\.(?: preemption: .*)?$", re.S)
_MISSING = re.compile(r'(secret|configmap) "([^"]+)" not found')
_NO_KEY = re.compile(r"couldn't find key (\S+) in (Secret|ConfigMap) ([^/\s]+)/(\S+)")
_VOLUME = re.compile(r'MountVolume\.SetUp failed for volume "([^"]+)"')
_IMAGE = re.compile(r'image "([^"]+)"')
_PULL_SECRETS = re.compile(r"Unable to retrieve some image pull secrets \(([^)]*)\)")


@dataclass(frozen=True)
class Hints:
    """What the profile says about one release, so a remedy can name what to change."""

    namespace: str = "highflame"
    service: str | None = None
    """Catalog service name: its overrides live under services.<service>.values."""
    module: str | None = None
    """Module the service belongs to (guardrails, redTeaming, ...), None for core."""
    group_label: str = "kube/nodegroup"
    general: str = "general"
    gpu: str = "gpu"
    secrets: Mapping[str, str] = field(default_factory=lambda: dict(SECRET_FIELDS))

    @property
    def values_path(self) -> str:
        return f"services.{self.service}.values" if self.service else "the release's values"

    def module_off(self) -> str:
        return f", or turn off the {self.module} module (modules.{self.module}.enabled: false)" if self.module else ""


@dataclass(frozen=True)
class Diagnosis:
    """One cause that keeps a workload's pods from being ready."""

    workload: str
    kind: str  # node-selector, resources, taint, unschedulable, storage, secret-volume, env-source,
    #             pull-secret, image-pull, crash, container
    cause: str
    remedy: str
    pods: int = 1

    @property
    def line(self) -> str:
        return f"{self.workload}: {self.cause}: {self.remedy}"


def hints_for(profile: Any, release: str) -> Hints:
    """Hints for `release` from the profile and its platform catalog (generic ones when it is not a
    catalog service: a bundled chart, a ClickHouse object)."""
    groups = profile.sizing.node_groups
    base = Hints(profile.target.namespace, None, None, groups.label, groups.general, groups.gpu)
    try:
        from hfwizard.platform.catalog import load_catalog

        catalog = load_catalog(profile.platform.version)
        service = next((name for name in catalog.services if catalog.release_name(name) == release), None)
    except Exception:  # an unknown platform version still gets generic remedies
        return base
    if service is None:
        return base
    module = catalog.services[service].module
    secrets = {**SECRET_FIELDS, f"{release}-env": f"the {service} settings in the profile (its env Secret)"}
    return Hints(base.namespace, service, None if module == "core" else module, base.group_label,
                 base.general, base.gpu, secrets)


# ---- reading the cluster -------------------------------------------------------------------------


def release_diagnosis(kube: Kube, namespace: str, objects: list[ManifestObject], hints: Hints) -> list[Diagnosis]:
    """The causes keeping the workloads among `objects` back (reads pods and events; blocking)."""
    owners: list[tuple[str, dict[str, str]]] = []
    for kind in WORKLOAD_KINDS:
        for item in objects_of(kube, kind, objects):
            spec = item.get("spec") or {}
            labels = (spec.get("selector") or {}).get("matchLabels") or \
                ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if labels:
                owners.append((item["metadata"]["name"], dict(labels)))
    if not owners:
        return []
    pods = items(kube.core.list_namespaced_pod, namespace)
    owned = _owned(pods, owners)
    if not any(not pod_ready(p) for p, _ in owned):
        return []
    events = items(kube.core.list_namespaced_event, namespace)
    return diagnose(owned, events, hints)


def _owned(pods: list[JSON], owners: list[tuple[str, dict[str, str]]]) -> list[tuple[JSON, str]]:
    out = []
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        for name, selector in owners:
            if all(labels.get(k) == v for k, v in selector.items()):
                out.append((pod, name))
                break
    return out


# ---- judging -------------------------------------------------------------------------------------


def diagnose(pods: Iterable[tuple[JSON, str]], events: list[JSON], hints: Hints) -> list[Diagnosis]:
    """One Diagnosis per (workload, cause) among the unready pods, given as (pod, workload name)."""
    warnings: dict[str, list[JSON]] = {}
    for e in events:
        obj = e.get("involvedObject") or {}
        if e.get("type") == "Warning" and obj.get("kind", "Pod") == "Pod":
            warnings.setdefault(str(obj.get("name")), []).append(e)
    found: dict[tuple[str, str, str], Diagnosis] = {}
    for pod, workload in pods:
        if pod_ready(pod) or (pod.get("status") or {}).get("phase") == "Succeeded":
            continue
        latest = sorted(warnings.get(pod["metadata"]["name"], []), key=_when)
        for d in _pod_causes(pod, workload, latest, hints):
            key = (d.workload, d.kind, d.cause)
            prior = found.get(key)
            found[key] = d if prior is None else Diagnosis(d.workload, d.kind, d.cause, d.remedy, prior.pods + 1)
    return list(found.values())


def _when(e: JSON) -> str:
    return str(e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or "")


def _pod_causes(pod: JSON, workload: str, events: list[JSON], hints: Hints) -> list[Diagnosis]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    out: list[Diagnosis] = []
    scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
    if not spec.get("nodeName") and scheduled is not None and scheduled.get("status") == "False":
        message = str(scheduled.get("message") or "")
        latest = [e for e in events if e.get("reason") == "FailedScheduling"]
        out += scheduling(workload, spec, str(latest[-1].get("message")) if latest else message, hints)
        return out
    by_reason = {str(e.get("reason")): str(e.get("message") or "") for e in events}
    if "FailedMount" in by_reason:
        out += _mount(workload, by_reason["FailedMount"], hints)
    if "FailedToRetrieveImagePullSecret" in by_reason:
        names = _PULL_SECRETS.search(by_reason["FailedToRetrieveImagePullSecret"])
        missing = names.group(1) if names else "?"
        fed = ", ".join(f"{n} ({hints.secrets[n]})" for n in missing.split(", ") if n in hints.secrets)
        out.append(Diagnosis(workload, "pull-secret", f"image pull secret {missing} does not exist",
                             f"give the registry token in {fed or 'images.pullSecret'} (the install writes the "
                             "Secret from it), or remove imagePullSecrets from " + hints.values_path))
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        d = _container(workload, cs, by_reason, hints)
        if d is not None:
            out.append(d)
    return out


def scheduling(workload: str, spec: JSON, message: str, hints: Hints) -> list[Diagnosis]:
    """FailedScheduling in kube-scheduler's words -> one Diagnosis per reason it gives."""
    m = _FAILED.match(message.strip())
    if not m:
        if "no nodes available" in message:
            return [Diagnosis(workload, "unschedulable", "the cluster has no nodes to schedule pods on",
                              "add worker nodes (preflight's kubernetes/nodes says how many)")]
        return [Diagnosis(workload, "unschedulable", f"cannot be scheduled: {message}",
                          "see `kubectl describe pod` for the scheduler's reasons")] if message else []
    total = int(m.group(1))
    text = m.group(2).replace(", that the pod didn't tolerate", "")
    out: list[Diagnosis] = []
    for part in text.split(", "):
        count_text, _, reason = part.strip().partition(" ")
        if not count_text.isdigit():
            count_text, reason = str(total), part.strip()
        d = _schedule_reason(workload, spec, int(count_text), total, reason, hints)
        if d is not None:
            out.append(d)
    return out


def _selector(spec: JSON) -> dict[str, str]:
    wanted = dict(spec.get("nodeSelector") or {})
    terms = ((((spec.get("affinity") or {}).get("nodeAffinity") or {})
              .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or [])
    for term in terms[:1]:
        for expr in term.get("matchExpressions") or []:
            if expr.get("operator") == "In" and expr.get("values"):
                wanted.setdefault(str(expr.get("key")), "|".join(map(str, expr["values"])))
    return wanted


def _schedule_reason(workload: str, spec: JSON, count: int, total: int, reason: str,
                     hints: Hints) -> Diagnosis | None:
    if "didn't match" in reason and ("selector" in reason or "affinity" in reason):
        wanted = _selector(spec)
        shown = ",".join(f"{k}={v}" for k, v in sorted(wanted.items())) or "its node affinity"
        cause = f"{total - count}/{total} nodes match nodeSelector {shown}"
        group = wanted.get(hints.group_label)
        if group == hints.gpu:
            remedy = (f"add a GPU node group labelled {hints.group_label}={hints.gpu}{hints.module_off()}")
        elif group is not None:
            remedy = (f"label the {group} nodes {hints.group_label}={group} (kubectl label nodes NODE "
                      f"{hints.group_label}={group}), or set sizing.nodeGroups.label and "
                      f"sizing.nodeGroups.{_group_field(group, hints)} to the label your nodes carry")
        else:
            remedy = f"label nodes {shown}, or change nodeSelector in {hints.values_path}"
        return Diagnosis(workload, "node-selector", cause, remedy)
    if reason.startswith("Insufficient ") or reason == "Too many pods":
        resource = reason.removeprefix("Insufficient ") if reason != "Too many pods" else "pods"
        asked = _requests(spec).get(resource)
        need = f" (each pod requests {asked} {resource})" if asked else ""
        cause = f"{count}/{total} nodes lack free {resource}{need}"
        remedy = (f"add nodes (or larger ones) to the node group, or lower resources.requests.{resource} in "
                  f"{hints.values_path}" if resource != "pods" else "add nodes to the node group")
        return Diagnosis(workload, "resources", cause, remedy)
    if "taint" in reason:
        taint = re.search(r"\{([^}]*)\}", reason)
        shown = taint.group(1).replace(": ", "=") if taint else "a taint"
        key = shown.split("=", 1)[0]
        return Diagnosis(workload, "taint", f"{count}/{total} nodes have taint {shown} it does not tolerate",
                         f"add a toleration for {key} in {hints.values_path} (tolerations), or remove the taint "
                         f"(kubectl taint nodes NODE {key}-)")
    if "unschedulable" in reason:
        return Diagnosis(workload, "unschedulable", f"{count}/{total} nodes are cordoned",
                         "uncordon them (kubectl uncordon NODE) or add nodes")
    if "PersistentVolumeClaim" in reason or "volume node affinity" in reason:
        return Diagnosis(workload, "storage", f"its volumes cannot be bound ({reason})",
                         "check the StorageClass (clickhouse.storageClass) and its provisioner")
    return Diagnosis(workload, "unschedulable", f"{count}/{total} nodes: {reason}",
                     "see `kubectl describe pod` for the scheduler's reasons")


def _group_field(group: str, hints: Hints) -> str:
    return "gpu" if group == hints.gpu else "general"


def _requests(spec: JSON) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in spec.get("containers") or []:
        for k, v in ((c.get("resources") or {}).get("requests") or {}).items():
            out.setdefault(str(k), str(v))  # the first container's figure: the one a reader looks for
    return out


def _mount(workload: str, message: str, hints: Hints) -> list[Diagnosis]:
    missing = _MISSING.search(message)
    volume = _VOLUME.search(message)
    if missing is None:
        return [Diagnosis(workload, "secret-volume", f"a volume cannot be mounted: {message}",
                          "see `kubectl describe pod`")]
    kind, name = ("Secret" if missing.group(1) == "secret" else "ConfigMap"), missing.group(2)
    where = f" (volume {volume.group(1)})" if volume else ""
    return [Diagnosis(workload, "secret-volume", f"{kind} {name}{where} does not exist",
                      _make_it(kind, name, hints))]


def _make_it(kind: str, name: str, hints: Hints) -> str:
    fed = hints.secrets.get(name)
    if fed is not None:
        return f"set {fed} so the install writes {kind} {name}, then `hfwizard resume`"
    return (f"create {kind} {name} in namespace {hints.namespace} (kubectl -n {hints.namespace} create "
            f"{kind.lower()} ...), or change the name in {hints.values_path}")


def _container(workload: str, cs: JSON, events: Mapping[str, str], hints: Hints) -> Diagnosis | None:
    waiting = (cs.get("state") or {}).get("waiting") or {}
    reason, message = str(waiting.get("reason") or ""), str(waiting.get("message") or "")
    name = cs.get("name", "?")
    if reason == "CreateContainerConfigError":
        key = _NO_KEY.search(message)
        if key is not None:
            return Diagnosis(workload, "env-source", f"container {name}: {key.group(2)} {key.group(4)} has no key "
                             f"{key.group(1)}", _make_it(key.group(2), key.group(4), hints))
        missing = _MISSING.search(message)
        if missing is not None:
            kind = "Secret" if missing.group(1) == "secret" else "ConfigMap"
            return Diagnosis(workload, "env-source", f"container {name}: env source {kind} {missing.group(2)} "
                             "does not exist", _make_it(kind, missing.group(2), hints))
        return Diagnosis(workload, "container", f"container {name}: {message or reason}", "see `kubectl describe pod`")
    if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
        return _image(workload, name, cs, message + " " + events.get("Failed", ""), hints)
    if reason == "CrashLoopBackOff":
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if last.get("reason") == "OOMKilled":
            return Diagnosis(workload, "crash", f"container {name} is killed for using more memory than its limit",
                             f"raise resources.limits.memory in {hints.values_path}")
        return Diagnosis(workload, "crash", f"container {name} keeps crashing ({cs.get('restartCount', 0)} "
                         "restarts)", f"read its log: kubectl -n {hints.namespace} logs POD -c {name} --previous")
    if reason in ("CreateContainerError", "RunContainerError"):
        return Diagnosis(workload, "container", f"container {name}: {message or reason}", "see `kubectl describe pod`")
    return None


def _image(workload: str, container: str, cs: JSON, text: str, hints: Hints) -> Diagnosis:
    image = cs.get("image") or (m.group(1) if (m := _IMAGE.search(text)) else "?")
    low = text.lower()
    if ("not found" in low and "no such host" not in low) or "manifest unknown" in low:
        why, remedy = "the image or tag does not exist", "set images.tag to a release tag Highflame issued"
    elif any(w in low for w in ("unauthorized", "denied", "401", "403", "authentication required")):
        why, remedy = "the registry refused the credentials", "give a valid registry token in images.pullSecret"
    elif any(w in low for w in ("no such host", "i/o timeout", "connection refused", "dial tcp", "timeout")):
        why, remedy = ("the registry cannot be reached from the nodes",
                       "open the nodes' egress to the registry, or set images.mirror to a registry they reach")
    else:
        why, remedy = "the image cannot be pulled", "check images.tag, images.mirror and images.pullSecret"
    return Diagnosis(workload, "image-pull", f"container {container}: image {image}: {why}", remedy)
