"""A controller player: makes workloads in the emulated cluster turn ready, slowly, never, or failing."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import fnmatch
import hashlib
import json
from typing import Any

import attrs

from hfwizard.sandbox.emulator.api import JSON, WatchEvent
from hfwizard.sandbox.emulator.store import Store

__all__ = ["FAIL_ANNOTATION", "HOLD_ANNOTATION", "ControllerPlayer"]

# Annotations on a workload steer the player from another process (the sandbox runs it beside the
# emulator, out of the installer's reach): hold it back, or make its pods crash.
HOLD_ANNOTATION = "sandbox.hfwizard.io/hold"
FAIL_ANNOTATION = "sandbox.hfwizard.io/fail"

_WORKLOADS = {
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
}


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.frozen
class _Failure:
    reason: str
    message: str


@attrs.define
class ControllerPlayer:
    """Plays the part of kube-controller-manager and kubelet for Deployments, StatefulSets, DaemonSets, Jobs.

    It runs on the emulator's own loop and writes through the emulator's direct API rather than
    over HTTP: it sees every change the moment it happens, needs no client or credentials, and a
    sandbox that runs the emulator as a separate process runs the player inside that process too.
    """

    emulator: Store  # the direct API: controllers never reach the HTTP layer
    ready_delay: float = 0.0  # seconds before the first replica turns ready
    step_delay: float = 0.0  # seconds between replicas turning ready (0: all at once)
    _held: set[tuple[str | None, str]] = attrs.field(factory=set, init=False)
    _failing: dict[tuple[str | None, str], _Failure] = attrs.field(factory=dict, init=False)
    _tasks: dict[tuple[str, str | None, str], tuple[int, asyncio.Task[None]]] = attrs.field(
        factory=dict, init=False
    )
    _main: asyncio.Task[None] | None = attrs.field(default=None, init=False)
    _started: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, init=False)

    # ---- steering ----------------------------------------------------------------------------

    def hold(self, name: str, namespace: str | None = None) -> None:
        """Never make workloads matching `name` (a glob) ready, until `release`."""
        self._held.add((namespace, name))
        self._request_kick()

    def release(self, name: str, namespace: str | None = None) -> None:
        self._held.discard((namespace, name))
        self._request_kick()

    def fail(
        self,
        name: str,
        namespace: str | None = None,
        *,
        reason: str = "CrashLoopBackOff",
        message: str = "back-off 10s restarting failed container",
    ) -> None:
        """Make workloads matching `name` fail: crashing pods and Warning events, never ready."""
        self._failing[(namespace, name)] = _Failure(reason, message)
        self._request_kick()

    def heal(self, name: str, namespace: str | None = None) -> None:
        self._failing.pop((namespace, name), None)
        self._request_kick()

    def _request_kick(self) -> None:
        # Tests steer the player from their own thread; the reconcile tasks live on the emulator's loop.
        if self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._kick()
        else:
            self._loop.call_soon_threadsafe(self._kick)

    def _match(self, table: Any, obj: JSON) -> Any:
        meta = obj["metadata"]
        for namespace, pattern in list(table):
            if (namespace is None or namespace == meta.get("namespace")) and fnmatch.fnmatchcase(
                meta["name"], pattern
            ):
                return table.get((namespace, pattern)) if isinstance(table, dict) else True
        return None

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.create_task(self._run(), name="controller-player")
        await self._started.wait()

    async def stop(self) -> None:
        for _, task in list(self._tasks.values()):
            task.cancel()
        if self._main is not None:
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        for _, task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _run(self) -> None:
        async with self.emulator.subscribe() as queue:
            self._started.set()
            self._kick()  # workloads already there (a restarted sandbox) carry on from where they were
            while True:
                event = await queue.get()
                if event is None:
                    return
                self._on_event(event)

    def _kick(self) -> None:
        for api_version, kind in _WORKLOADS:
            for obj in self.emulator.list_objects(api_version, kind):
                self._schedule(api_version, kind, obj, force=True)

    def _on_event(self, event: WatchEvent) -> None:
        key = (event.resource.group_version, event.resource.kind)
        if key not in _WORKLOADS:
            return
        if event.type == "DELETED":
            task_key = (
                event.resource.kind,
                event.object["metadata"].get("namespace"),
                event.object["metadata"]["name"],
            )
            if task_key in self._tasks:
                self._tasks.pop(task_key)[1].cancel()
            return
        self._schedule(key[0], key[1], event.object, force=False)

    def _schedule(self, api_version: str, kind: str, obj: JSON, *, force: bool) -> None:
        meta = obj["metadata"]
        key = (kind, meta.get("namespace"), meta["name"])
        generation = int(meta.get("generation", 1))
        current = self._tasks.get(key)
        if current is not None and not force:
            running_generation, task = current
            # Our own status writes come back as MODIFIED events: only a new generation restarts.
            if running_generation == generation and not task.done():
                return
            if running_generation == generation and task.done() and not self._needs_work(kind, obj):
                return
        if current is not None:
            current[1].cancel()
        task = asyncio.create_task(
            self._reconcile(api_version, kind, meta.get("namespace"), meta["name"]),
            name=f"reconcile {kind} {meta.get('namespace')}/{meta['name']}",
        )
        self._tasks[key] = (generation, task)

    def _needs_work(self, kind: str, obj: JSON) -> bool:
        status = obj.get("status") or {}
        return int(status.get("observedGeneration", 0)) != int(obj["metadata"].get("generation", 1)) and (
            kind != "Job"
        )

    # ---- reconciling -------------------------------------------------------------------------

    async def _reconcile(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        obj = self.emulator.get_object(api_version, kind, namespace, name)
        if obj is None:
            return
        annotations = obj["metadata"].get("annotations") or {}
        held = self._match(self._held, obj) or annotations.get(HOLD_ANNOTATION) == "true"
        failure = self._match(self._failing, obj)
        if failure is None and annotations.get(FAIL_ANNOTATION):
            failure = _Failure(annotations[FAIL_ANNOTATION], "back-off 10s restarting failed container")
        desired = await self._desired(kind, obj)
        generation = int(obj["metadata"].get("generation", 1))

        if kind == "Job":
            await self._reconcile_job(obj, desired, held, failure)
            return

        previous_ready = int(
            (obj.get("status") or {}).get("readyReplicas")
            or (obj.get("status") or {}).get("numberReady")
            or 0
        )
        same_generation = int((obj.get("status") or {}).get("observedGeneration", 0)) == generation
        ready = min(previous_ready, desired) if same_generation else 0
        await self._sync_pods(obj, desired, ready, failure)
        await self._write(kind, obj, desired, ready, updated=desired if same_generation else 0)
        if held or failure is not None:
            return  # observed, never ready: Helm's wait runs into its timeout (or sees the failure)
        await asyncio.sleep(self.ready_delay)
        await self._write(kind, obj, desired, ready, updated=desired)
        while ready < desired:
            if self.step_delay:
                ready += 1
                await asyncio.sleep(self.step_delay if ready > 1 else 0)
            else:
                ready = desired
            await self._sync_pods(obj, desired, ready, None)
            await self._write(kind, obj, desired, ready, updated=desired)
        await self._sync_pods(obj, desired, ready, None)
        await self._write(kind, obj, desired, ready, updated=desired)

    async def _desired(self, kind: str, obj: JSON) -> int:
        spec = obj.get("spec") or {}
        if kind == "DaemonSet":
            nodes = self.emulator.list_objects("v1", "Node")
            return sum(
                1
                for n in nodes
                if any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (n.get("status") or {}).get("conditions") or []
                )
            )
        if kind == "Job":
            return int(spec.get("completions") or 1)
        replicas = spec.get("replicas")
        return 1 if replicas is None else int(replicas)

    async def _write(self, kind: str, obj: JSON, desired: int, ready: int, *, updated: int) -> None:
        meta = obj["metadata"]
        generation = int(meta.get("generation", 1))
        status: JSON
        if kind == "Deployment":
            available = ready == desired and updated == desired
            status = {
                "observedGeneration": generation,
                "replicas": desired,
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": desired - ready if desired > ready else None,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True" if available else "False",
                        "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                        "message": f"{ready}/{desired} replicas available",
                        "lastUpdateTime": _now(),
                        "lastTransitionTime": _now(),
                    },
                    {
                        "type": "Progressing",
                        "status": "True",
                        "reason": "NewReplicaSetAvailable" if available else "ReplicaSetUpdated",
                        "message": f'ReplicaSet "{meta["name"]}-{_hash(obj)}" '
                        + ("has successfully progressed." if available else "is progressing."),
                        "lastUpdateTime": _now(),
                        "lastTransitionTime": _now(),
                    },
                ],
            }
        elif kind == "StatefulSet":
            revision = f"{meta['name']}-{_hash(obj)}"
            status = {
                "observedGeneration": generation,
                "replicas": desired,
                "readyReplicas": ready,
                "currentReplicas": updated,
                "updatedReplicas": updated,
                "availableReplicas": ready,
                "currentRevision": revision if updated == desired else f"{meta['name']}-previous",
                "updateRevision": revision,
                "collisionCount": 0,
            }
        else:  # DaemonSet
            status = {
                "observedGeneration": generation,
                "desiredNumberScheduled": desired,
                "currentNumberScheduled": desired,
                "updatedNumberScheduled": updated,
                "numberReady": ready,
                "numberAvailable": ready,
                "numberMisscheduled": 0,
                "numberUnavailable": desired - ready if desired > ready else None,
            }
        api_version = "apps/v1"
        current = self.emulator.get_object(api_version, kind, meta.get("namespace"), meta["name"])
        if current is None:
            return
        # Conditions carry timestamps: keep the old ones when nothing but the time would change.
        old_conditions = {c["type"]: c for c in (current.get("status") or {}).get("conditions") or []}
        for condition in status.get("conditions") or []:
            old = old_conditions.get(condition["type"])
            if old and all(old.get(k) == condition.get(k) for k in ("status", "reason", "message")):
                condition.update({k: old[k] for k in ("lastUpdateTime", "lastTransitionTime") if k in old})
        await self.emulator.patch_status(api_version, kind, meta.get("namespace"), meta["name"], status)

    async def _reconcile_job(self, obj: JSON, completions: int, held: bool, failure: _Failure | None) -> None:
        meta = obj["metadata"]
        status = obj.get("status") or {}
        if any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in status.get("conditions") or []
        ):
            return
        start = status.get("startTime") or _now()
        await self.emulator.patch_status(
            "batch/v1",
            "Job",
            meta.get("namespace"),
            meta["name"],
            {"startTime": start, "active": completions, "ready": 0},
        )
        await self._sync_pods(obj, completions, 0, failure)
        if held:
            return
        if failure is not None:
            backoff = int((obj.get("spec") or {}).get("backoffLimit", 6))
            await self.emulator.patch_status(
                "batch/v1",
                "Job",
                meta.get("namespace"),
                meta["name"],
                {
                    "active": 0,
                    "failed": backoff + 1,
                    "conditions": [
                        {
                            "type": "FailureTarget",
                            "status": "True",
                            "reason": "BackoffLimitExceeded",
                            "message": "Job has reached the specified backoff limit",
                            "lastTransitionTime": _now(),
                        },
                        {
                            "type": "Failed",
                            "status": "True",
                            "reason": "BackoffLimitExceeded",
                            "message": "Job has reached the specified backoff limit",
                            "lastTransitionTime": _now(),
                        },
                    ],
                },
            )
            return
        await asyncio.sleep(self.ready_delay)
        await self._sync_pods(obj, completions, completions, None, succeeded=True)
        await self.emulator.patch_status(
            "batch/v1",
            "Job",
            meta.get("namespace"),
            meta["name"],
            {
                "active": 0,
                "ready": 0,
                "succeeded": completions,
                "completionTime": _now(),
                "conditions": [
                    {
                        "type": "SuccessCriteriaMet",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                        "lastTransitionTime": _now(),
                    },
                    {
                        "type": "Complete",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                        "lastTransitionTime": _now(),
                    },
                ],
            },
        )

    # ---- pods and events ---------------------------------------------------------------------

    async def _sync_pods(
        self, owner: JSON, desired: int, ready: int, failure: _Failure | None, *, succeeded: bool = False
    ) -> None:
        meta = owner["metadata"]
        namespace = meta.get("namespace")
        template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
        labels = (template.get("metadata") or {}).get("labels") or {}
        nodes = [n["metadata"]["name"] for n in self.emulator.list_objects("v1", "Node")]
        wanted = {f"{meta['name']}-{index}" for index in range(desired)}
        for pod in self.emulator.list_objects("v1", "Pod", namespace):
            refs = pod["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == meta.get("uid") for r in refs) and pod["metadata"]["name"] not in wanted:
                await self.emulator.delete_object("v1", "Pod", namespace, pod["metadata"]["name"])
        for index in range(desired):
            name = f"{meta['name']}-{index}"
            pod_ready = index < ready and failure is None
            containers = (template.get("spec") or {}).get("containers") or [{"name": "main", "image": ""}]
            phase = "Succeeded" if succeeded else "Running" if pod_ready or failure else "Pending"
            container_statuses = [
                _container_status(container, f"{_hash(owner)}{index}", pod_ready, failure, succeeded)
                for container in containers
            ]
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": dict(labels),
                    "annotations": (template.get("metadata") or {}).get("annotations") or {},
                    "ownerReferences": [
                        {
                            "apiVersion": owner["apiVersion"],
                            "kind": owner["kind"],
                            "name": meta["name"],
                            "uid": meta.get("uid", ""),
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": {
                    **(template.get("spec") or {}),
                    "nodeName": nodes[index % len(nodes)] if nodes else None,
                },
                "status": {
                    "phase": phase,
                    "conditions": [
                        {"type": "PodScheduled", "status": "True"},
                        {
                            "type": "Ready",
                            "status": "True" if pod_ready else "False",
                            **({"reason": "ContainersNotReady"} if not pod_ready else {}),
                        },
                        {"type": "ContainersReady", "status": "True" if pod_ready else "False"},
                    ],
                    "containerStatuses": container_statuses,
                    "podIP": f"10.244.0.{index + 10}",
                },
            }
            existing = self.emulator.get_object("v1", "Pod", namespace, name)
            if (
                existing is None
                or {k: existing.get(k) for k in ("spec", "status")}
                != {k: _drop_none(pod.get(k)) for k in ("spec", "status")}
                or (existing["metadata"].get("labels") or {}) != labels
            ):
                await self.emulator.upsert(_drop_none(pod))
            if failure is not None:
                await self._warn(namespace, name, failure)

    async def _warn(self, namespace: str | None, pod: str, failure: _Failure) -> None:
        name = f"{pod}.backoff"
        existing = self.emulator.get_object("v1", "Event", namespace, name)
        count = int((existing or {}).get("count", 0)) + 1 if existing else 1
        if existing is not None:
            return  # one Warning per crashing pod is enough for "last events of failing pods"
        await self.emulator.upsert(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": namespace},
                "reason": "BackOff",
                "type": "Warning",
                "count": count,
                "message": f"{failure.reason}: {failure.message}",
                "source": {"component": "kubelet"},
                "firstTimestamp": _now(),
                "lastTimestamp": _now(),
            }
        )


def _container_status(
    container: JSON, container_id: str, ready: bool, failure: _Failure | None, succeeded: bool
) -> JSON:
    state: JSON
    if failure is not None:
        state = {"waiting": {"reason": failure.reason, "message": failure.message}}
    elif succeeded:
        state = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    elif ready:
        state = {"running": {"startedAt": _now()}}
    else:
        state = {"waiting": {"reason": "ContainerCreating"}}
    return {
        "name": container.get("name", "main"),
        "image": container.get("image", ""),
        "imageID": f"sandbox://{container.get('image', '')}",
        "containerID": f"containerd://{container_id}",
        "ready": ready,
        "started": ready,
        "restartCount": 5 if failure else 0,
        "state": state,
    }


def _hash(obj: JSON) -> str:
    template = (obj.get("spec") or {}).get("template") or {}
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
