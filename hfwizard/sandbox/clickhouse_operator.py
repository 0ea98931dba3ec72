"""An emulated Altinity ClickHouse operator: what it does to the API for ClickHouse(Keeper)Installations.

For each installation it creates what the real operator creates, with its names and labels: one
StatefulSet per host (`chi-<chi>-<cluster>-<shard>-<replica>`, `chk-<chk>-<cluster>-<shard>-<replica>`)
with a Service of the same name, the PersistentVolumeClaims of the volume claim templates, and the
installation's Service (`clickhouse-<chi>`, `keeper-<chk>`); then it reports progress in the status
(`InProgress`, hosts completed as the StatefulSets turn ready, `Completed`), or `Aborted` when told to
fail. It acts only while an operator Deployment from Altinity's chart is ready, as the real one would.

It uses a handful of the emulator's direct methods: `subscribe`, `list_objects`, `get_object`,
`upsert`, `patch_status`; the controller player makes the StatefulSets ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import fnmatch
from typing import Any, Final

import attrs

from hfwizard.sandbox.emulator import Store, WatchEvent
from hfwizard.sandbox.emulator.controllers.pods import call_on_loop

JSON = dict[str, Any]

__all__ = ["FAIL_ANNOTATION", "HOLD_ANNOTATION", "ClickHouseOperator"]

HOLD_ANNOTATION: Final = "sandbox.hfwizard.io/hold"
FAIL_ANNOTATION: Final = "sandbox.hfwizard.io/fail"
OPERATOR_APP: Final = "altinity-clickhouse-operator"  # app.kubernetes.io/name of the chart's Deployment


@attrs.frozen
class _Kind:
    api_version: str
    kind: str
    group: str  # label prefix, as the operator's labeler uses it
    prefix: str  # StatefulSet names: chi-... / chk-...
    cr_label: str  # clickhouse.altinity.com/chi, clickhouse-keeper.altinity.com/chk
    service: str  # the installation's own Service: clickhouse-<name> / keeper-<name>
    ports: tuple[tuple[str, int], ...]
    data_path: str  # where the data volume claim template is mounted, in every container


CHI: Final = _Kind("clickhouse.altinity.com/v1", "ClickHouseInstallation", "clickhouse.altinity.com", "chi",
                   "chi", "clickhouse", (("http", 8123), ("tcp", 9000)), "/var/lib/clickhouse")
CHK: Final = _Kind("clickhouse-keeper.altinity.com/v1", "ClickHouseKeeperInstallation",
                   "clickhouse-keeper.altinity.com", "chk", "chk", "keeper", (("zk", 2181), ("raft", 9444)),
                   "/var/lib/clickhouse-keeper")
_KINDS: Final = {(k.api_version, k.kind): k for k in (CHI, CHK)}


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.frozen
class _Host:
    cluster: str
    shard: int
    replica: int
    name: str  # StatefulSet, its Service, and (with -0) its pod


def _hosts(kind: _Kind, obj: JSON) -> list[_Host]:
    out = []
    name = obj["metadata"]["name"]
    for cluster in ((obj.get("spec") or {}).get("configuration") or {}).get("clusters") or []:
        layout = cluster.get("layout") or {}
        shards = 1 if kind is CHK else int(layout.get("shardsCount") or 1)
        for shard in range(shards):
            for replica in range(int(layout.get("replicasCount") or 1)):
                out.append(_Host(cluster["name"], shard, replica,
                                 f"{kind.prefix}-{name}-{cluster['name']}-{shard}-{replica}"))
    return out


@attrs.define
class ClickHouseOperator:
    """Reconciles ClickHouseInstallations and ClickHouseKeeperInstallations in the emulator.

    `hold(name)` keeps matching installations InProgress (their objects are created, the status never
    completes); `fail(name, message)` makes them Aborted with that error. Both take a name glob
    (`chi/GLOB` or `chk/GLOB` for one kind only) and an optional namespace, and the
    `sandbox.hfwizard.io/hold` / `.../fail` annotations do the same.
    """

    emulator: Store
    step_delay: float = 0.0  # seconds between status updates, to watch progress
    _held: set[tuple[str | None, str]] = attrs.field(factory=set, init=False)
    _failing: dict[tuple[str | None, str], str] = attrs.field(factory=dict, init=False)
    _tasks: dict[tuple[str, str, str], tuple[int, asyncio.Task[None]]] = attrs.field(factory=dict, init=False)
    _main: asyncio.Task[None] | None = attrs.field(default=None, init=False)
    _started: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, init=False)
    _changed: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)

    # ---- steering ----------------------------------------------------------------------------

    def hold(self, name: str, namespace: str | None = None) -> None:
        self._held.add((namespace, name))
        self._request_kick()

    def release(self, name: str, namespace: str | None = None) -> None:
        self._held.discard((namespace, name))
        self._request_kick()

    def fail(self, name: str, namespace: str | None = None, *,
             message: str = "FAILED to reconcile: StatefulSet did not become ready") -> None:
        self._failing[(namespace, name)] = message
        self._request_kick()

    def heal(self, name: str, namespace: str | None = None) -> None:
        self._failing.pop((namespace, name), None)
        self._request_kick()

    def _request_kick(self) -> None:
        call_on_loop(self._loop, self._kick)

    def _matches(self, patterns: Any, obj: JSON) -> Any:
        meta = obj["metadata"]
        short = next((k.prefix for k in _KINDS.values() if k.kind == obj.get("kind")), "")
        for namespace, pattern in list(patterns):
            kind, _, glob = pattern.rpartition("/")  # "chi/NAME" or "chk/NAME": that kind only
            if kind and kind != short:
                continue
            if (namespace is None or namespace == meta.get("namespace")) and fnmatch.fnmatchcase(meta["name"], glob):
                return patterns[(namespace, pattern)] if isinstance(patterns, dict) else True
        return None

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.create_task(self._run(), name="clickhouse-operator")
        await self._started.wait()

    async def stop(self) -> None:
        tasks = [task for _, task in self._tasks.values()]
        if self._main is not None:
            tasks.append(self._main)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _run(self) -> None:
        async with self.emulator.subscribe() as queue:
            self._started.set()
            self._kick()  # installations already there (a restarted sandbox) carry on
            while True:
                event = await queue.get()
                if event is None:
                    return
                self._on_event(event)

    def _on_event(self, event: WatchEvent) -> None:
        key = (event.resource.group_version, event.resource.kind)
        meta = event.object["metadata"]
        if key in _KINDS:
            task_key = (event.resource.kind, meta.get("namespace", ""), meta["name"])
            if event.type == "DELETED":
                if task_key in self._tasks:
                    self._tasks.pop(task_key)[1].cancel()
                return
            self._schedule(_KINDS[key], event.object, force=False)
        elif key in (("apps/v1", "StatefulSet"), ("apps/v1", "Deployment")):
            self._changed.set()  # a host or the operator itself changed readiness
            if key[1] == "Deployment" and self._operator_ready():
                self._kick(only_idle=True)

    def _kick(self, *, only_idle: bool = False) -> None:
        for kind in _KINDS.values():
            try:
                objects = self.emulator.list_objects(kind.api_version, kind.kind)
            except KeyError:
                continue  # the CRDs are not installed yet
            for obj in objects:
                self._schedule(kind, obj, force=not only_idle)

    def _schedule(self, kind: _Kind, obj: JSON, *, force: bool) -> None:
        meta = obj["metadata"]
        key = (kind.kind, meta.get("namespace", ""), meta["name"])
        generation = int(meta.get("generation", 1))
        current = self._tasks.get(key)
        # Our own status writes come back as MODIFIED events: only a new generation restarts.
        if current is not None and not force and current[0] == generation and (
                not current[1].done() or _settled(obj)):
            return
        if current is not None:
            current[1].cancel()
        task = asyncio.create_task(self._reconcile(kind, meta.get("namespace", ""), meta["name"]),
                                   name=f"reconcile {kind.kind} {key[1]}/{key[2]}")
        self._tasks[key] = (generation, task)

    def _operator_ready(self) -> bool:
        return any(
            (d["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == OPERATOR_APP
            and int((d.get("status") or {}).get("readyReplicas") or 0) >= 1
            for d in self.emulator.peek_objects("apps/v1", "Deployment"))

    def _operator_version(self) -> str:
        for d in self.emulator.peek_objects("apps/v1", "Deployment"):
            labels = d["metadata"].get("labels") or {}
            if labels.get("app.kubernetes.io/name") == OPERATOR_APP:
                return str(labels.get("app.kubernetes.io/version", "0.25.6"))
        return "0.25.6"

    # ---- reconciling -------------------------------------------------------------------------

    async def _reconcile(self, kind: _Kind, namespace: str, name: str) -> None:
        if not self._operator_ready():
            return  # no operator running: nobody reconciles (a ready Deployment kicks us again)
        obj = self.emulator.get_object(kind.api_version, kind.kind, namespace, name)
        if obj is None:
            return
        meta = obj["metadata"]
        held, failure = self._steering(obj)
        hosts = _hosts(kind, obj)
        if not failure and _settled(obj) and obj["status"]["status"] == "Completed":
            # Done with this generation (a restart, or a kick for another installation): keep what it
            # made in place, without a detour through InProgress.
            for host in hosts:
                await self._apply_host(kind, obj, host)
            await self._apply_cr_service(kind, obj)
            return
        generation = int(meta.get("generation", 1))
        task_id = f"auto-{meta.get('uid', '')[:8]}-{generation}"
        await self._status(kind, obj, hosts, "InProgress", task_id, completed=0,
                           action=f"reconcile started for generation {generation}", error=None)
        for host in hosts:
            await self._apply_host(kind, obj, host)
            await self._pause()
        await self._apply_cr_service(kind, obj)
        if failure:
            await self._status(kind, obj, hosts, "Aborted", task_id, completed=0,
                               action="reconcile aborted", error=str(failure))
            return
        while True:
            current = self.emulator.get_object(kind.api_version, kind.kind, namespace, name)
            if current is None:
                return
            held = self._steering(current)[0]  # a hold annotation may come or go mid-way
            completed = sum(1 for h in hosts if self._host_ready(namespace, h))
            if held:
                completed = min(completed, max(len(hosts) - 1, 0))
            done = completed == len(hosts) and not held
            await self._status(kind, obj, hosts, "Completed" if done else "InProgress", task_id,
                               completed=completed, action="reconcile completed" if done
                               else f"waiting for hosts: {completed}/{len(hosts)} ready", error=None)
            if done:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=1.0)

    def _steering(self, obj: JSON) -> tuple[bool, str | None]:
        meta = obj["metadata"]
        annotations = meta.get("annotations") or {}
        held = bool(self._matches(self._held, obj)) or annotations.get(HOLD_ANNOTATION) == "true"
        failure = self._matches(self._failing, obj) or annotations.get(FAIL_ANNOTATION)
        return held, failure

    async def _pause(self) -> None:
        if self.step_delay:
            await asyncio.sleep(self.step_delay)

    def _host_ready(self, namespace: str, host: _Host) -> bool:
        sts = self.emulator.get_object("apps/v1", "StatefulSet", namespace, host.name)
        return sts is not None and int((sts.get("status") or {}).get("readyReplicas") or 0) >= 1

    async def _status(self, kind: _Kind, obj: JSON, hosts: list[_Host], state: str, task_id: str, *,
                      completed: int, action: str, error: str | None) -> None:
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        clusters = {h.cluster for h in hosts}
        status: JSON = {
            "chop-version": self._operator_version(),
            "chop-commit": "sandbox",
            "chop-ip": "10.244.0.2",
            "clusters": len(clusters),
            "shards": len({(h.cluster, h.shard) for h in hosts}),
            "replicas": len({(h.cluster, h.replica) for h in hosts}),
            "hosts": len(hosts),
            "hostsCompleted": completed,
            "status": state,
            "taskID": task_id,
            "taskIDsStarted": [task_id],
            "taskIDsCompleted": [task_id] if state == "Completed" else None,
            "action": action,
            "error": error,
            "errors": [error] if error else None,
            "generation": int(meta.get("generation", 1)),
            "pods": [f"{h.name}-0" for h in hosts],
            "fqdns": [f"{h.name}.{ns}.svc.cluster.local" for h in hosts],
            "endpoint": f"{kind.service}-{name}.{ns}.svc.cluster.local",
            "endpoints": [f"{kind.service}-{name}.{ns}.svc.cluster.local"],
        }
        await self.emulator.patch_status(kind.api_version, kind.kind, ns, name, status)

    def _labels(self, kind: _Kind, obj: JSON, host: _Host | None = None) -> dict[str, str]:
        meta = obj["metadata"]
        labels = {
            f"{kind.group}/app": "chop",
            f"{kind.group}/chop": self._operator_version(),
            f"{kind.group}/namespace": meta.get("namespace", ""),
            f"{kind.group}/{kind.cr_label}": meta["name"],
        }
        if host is not None:
            labels.update({f"{kind.group}/cluster": host.cluster, f"{kind.group}/shard": str(host.shard),
                           f"{kind.group}/replica": str(host.replica)})
        return labels

    def _owner(self, obj: JSON) -> list[JSON]:
        meta = obj["metadata"]
        return [{"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
                 "uid": meta.get("uid", ""), "controller": True, "blockOwnerDeletion": True}]

    async def _apply_host(self, kind: _Kind, obj: JSON, host: _Host) -> None:
        ns = obj["metadata"].get("namespace", "")
        labels = self._labels(kind, obj, host)
        pod_template, claims = _templates(obj)
        pod_meta = pod_template.get("metadata") or {}
        pod_spec = _with_data_mounts(kind, obj, pod_template.get("spec") or {})
        sts = {
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": host.name, "namespace": ns, "labels": labels, "ownerReferences": self._owner(obj)},
            "spec": {
                "replicas": 1,
                "serviceName": host.name,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": {**(pod_meta.get("labels") or {}), **labels},
                                          "annotations": pod_meta.get("annotations") or {}},
                             "spec": pod_spec},
                "volumeClaimTemplates": [{"metadata": {"name": c["name"]}, "spec": c.get("spec") or {}}
                                         for c in claims],
            },
        }
        await self._ensure(sts)
        await self._ensure({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": host.name, "namespace": ns, "labels": labels, "ownerReferences": self._owner(obj)},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": labels,
                     "ports": [{"name": p, "port": n} for p, n in kind.ports]},
        })
        for claim in claims:
            # Retain (hfwizard asks for it): no owner reference, so the data outlives the installation.
            owned = claim.get("reclaimPolicy") != "Retain"
            await self._ensure({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": f"{claim['name']}-{host.name}-0", "namespace": ns,
                             "labels": {**labels, f"{kind.group}/reclaimPolicy": claim.get("reclaimPolicy", "Delete")},
                             **({"ownerReferences": self._owner(obj)} if owned else {})},
                "spec": claim.get("spec") or {},
            })

    async def _apply_cr_service(self, kind: _Kind, obj: JSON) -> None:
        meta = obj["metadata"]
        await self._ensure({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"{kind.service}-{meta['name']}", "namespace": meta.get("namespace", ""),
                         "labels": self._labels(kind, obj), "ownerReferences": self._owner(obj)},
            "spec": {"type": "ClusterIP", "selector": self._labels(kind, obj),
                     "ports": [{"name": p, "port": n, "targetPort": n} for p, n in kind.ports]},
        })

    async def _ensure(self, desired: JSON) -> None:
        """Create, or update when the spec or labels differ; status and cluster-set fields are kept."""
        meta = desired["metadata"]
        current = self.emulator.get_object(desired["apiVersion"], desired["kind"], meta["namespace"], meta["name"])
        if current is not None:
            same_labels = (current["metadata"].get("labels") or {}) == meta.get("labels", {})
            spec = {**(current.get("spec") or {}), **desired.get("spec", {})}
            if same_labels and spec == current.get("spec"):
                return
            desired = {**desired, "spec": spec}
        await self.emulator.upsert(desired, keep_status=True)


def _templates(obj: JSON) -> tuple[JSON, list[JSON]]:
    """The pod template and volume claim templates the installation's defaults name."""
    spec = obj.get("spec") or {}
    defaults = (spec.get("defaults") or {}).get("templates") or {}
    templates = spec.get("templates") or {}
    pods = {t.get("name"): t for t in templates.get("podTemplates") or []}
    claims = {t.get("name"): t for t in templates.get("volumeClaimTemplates") or []}
    pod: JSON = pods.get(defaults.get("podTemplate")) or next(iter(pods.values()), {})
    wanted = [defaults.get(k) for k in ("dataVolumeClaimTemplate", "logVolumeClaimTemplate", "volumeClaimTemplate")]
    chosen = [claims[n] for n in dict.fromkeys(w for w in wanted if w) if n in claims]
    return pod, chosen


def _settled(obj: JSON) -> bool:
    """Whether the status already reflects this generation's end state (nothing left to do)."""
    status = obj.get("status") or {}
    return status.get("status") in ("Completed", "Aborted") and int(status.get("generation") or 0) == int(
        obj["metadata"].get("generation", 1))


def _with_data_mounts(kind: _Kind, obj: JSON, spec: JSON) -> JSON:
    """As the operator does: the data volume claim template mounted in every container of the pod."""
    data = (((obj.get("spec") or {}).get("defaults") or {}).get("templates") or {}).get("dataVolumeClaimTemplate")
    if not data:
        return spec
    containers = []
    for container in spec.get("containers") or []:
        mounts = list(container.get("volumeMounts") or [])
        if not any(m.get("name") == data or m.get("mountPath") == kind.data_path for m in mounts):
            mounts.append({"name": data, "mountPath": kind.data_path})
        containers.append({**container, "volumeMounts": mounts})
    return {**spec, "containers": containers}
