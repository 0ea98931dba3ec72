"""A controller player: makes workloads in the emulated cluster turn ready, slowly, never, or failing."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import fnmatch
from collections.abc import Mapping
from typing import Any

import attrs

from hfwizard.sandbox.emulator.api import JSON, WatchEvent
from hfwizard.sandbox.emulator.controllers import kubelet
from hfwizard.sandbox.emulator.controllers.autoscaler import HPA_VERSIONS, reconcile_autoscalers
from hfwizard.sandbox.emulator.controllers.bare_pods import BarePods, parse_egress
from hfwizard.sandbox.emulator.controllers.logs import ContainerLogs
from hfwizard.sandbox.emulator.controllers.pods import (
    Failure,
    PodPlan,
    call_on_loop,
    plan_pods,
    sync_pods,
    template_hash,
)
from hfwizard.sandbox.emulator.controllers.scheduler import eligible
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


_SCALED = {*_WORKLOADS, *((v, "HorizontalPodAutoscaler") for v in HPA_VERSIONS)}

# Changes that can unblock a pod: a new node (scheduler), a Secret or ConfigMap it waits for (kubelet).
_RETRY_ON = {("v1", "Node"), ("v1", "Secret"), ("v1", "ConfigMap")}


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    # Image pulls from these registries fail (ErrImagePull): names, or registry -> the cause in containerd's words.
    unreachable_registries: Mapping[str, str] = attrs.field(factory=dict, converter=kubelet.unreachable_causes)
    # What the containers write; the HTTP layer serves it (pass the emulator's own: `EmulatedCluster.logs`).
    logs: ContainerLogs = attrs.field(factory=ContainerLogs)
    egress: dict[str, str] = attrs.field(factory=dict)  # host -> how a bare pod's request to it fails
    _bare: BarePods | None = attrs.field(default=None, init=False)
    _held: set[tuple[str | None, str]] = attrs.field(factory=set, init=False)
    _failing: dict[tuple[str | None, str], Failure] = attrs.field(factory=dict, init=False)
    _tasks: dict[tuple[str, str | None, str], tuple[int, asyncio.Task[None]]] = attrs.field(
        factory=dict, init=False
    )
    _main: asyncio.Task[None] | None = attrs.field(default=None, init=False)
    _scaling: set[str | None] = attrs.field(factory=set, init=False)
    _rescale: set[str | None] = attrs.field(factory=set, init=False)
    _blocked: set[tuple[str, str | None, str]] = attrs.field(factory=set, init=False)  # pods waiting
    _side_tasks: set[asyncio.Task[None]] = attrs.field(factory=set, init=False)
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
        self._failing[(namespace, name)] = Failure(reason, message)
        self._request_kick()

    def heal(self, name: str, namespace: str | None = None) -> None:
        self._failing.pop((namespace, name), None)
        self._request_kick()

    def block_egress(self, host: str, how: str = "refused") -> None:
        """Bare pods' requests to `host` (or host:port) fail: how is dns, refused or timeout."""
        self.egress.update(parse_egress([f"{host}={how}"]))

    def allow_egress(self, host: str) -> None:
        self.egress.pop(host.lower(), None)

    def _request_kick(self) -> None:
        call_on_loop(self._loop, self._kick)

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
        # Shares `egress` with the player: steering one steers both.
        self._bare = BarePods(self.emulator, self.unreachable_registries, self.egress)
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
        if self._bare is not None:
            await self._bare.stop()

    async def _run(self) -> None:
        async with self.emulator.subscribe() as queue:
            self._started.set()
            self._kick()  # workloads already there (a restarted sandbox) carry on from where they were
            while True:
                event = await queue.get()
                if event is None:
                    return
                self._on_event(event)

    def _retry_blocked(self, *, daemonsets: bool) -> None:
        # Read in place (_schedule reads the metadata only): every Helm record written is a Secret event,
        # and copying every workload on each one cost a sixth of the emulator's CPU.
        for api_version, kind in _WORKLOADS:
            for obj in self.emulator.peek_objects(api_version, kind):
                meta = obj["metadata"]
                if (kind, meta.get("namespace"), meta["name"]) in self._blocked or (daemonsets and kind == "DaemonSet"):
                    self._schedule(api_version, kind, obj, force=True)

    def _kick(self) -> None:
        for api_version, kind in _WORKLOADS:
            for obj in self.emulator.peek_objects(api_version, kind):
                self._schedule(api_version, kind, obj, force=True)

    def _on_event(self, event: WatchEvent) -> None:
        key = (event.resource.group_version, event.resource.kind)
        if key == ("v1", "Pod") and event.type == "DELETED":
            self.logs.forget_pod(event.object["metadata"].get("namespace"), event.object["metadata"]["name"])
        if key in _RETRY_ON:
            # A node, Secret or ConfigMap changed: blocked pods may now run (the scheduler re-queues,
            # the kubelet retries), and DaemonSets follow the nodes. Running workloads are left alone.
            self._retry_blocked(daemonsets=key == ("v1", "Node"))
            return
        if key in _SCALED:
            self._autoscale(event.object["metadata"].get("namespace"))
        if key == ("v1", "Pod") and self._bare is not None:
            self._bare.on_event(event)  # pods nobody owns; a workload's own pods are written here
            return
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

    def _autoscale(self, namespace: str | None) -> None:
        # One pass per namespace at a time; the HPA's own status writes come back as events, and a
        # pass that changes nothing writes nothing, so this settles.
        if namespace in self._scaling:
            self._rescale.add(namespace)  # changed during a pass: run once more after it
            return
        self._scaling.add(namespace)

        def done(_: object) -> None:
            self._scaling.discard(namespace)
            if namespace in self._rescale:
                self._rescale.discard(namespace)
                self._autoscale(namespace)

        task = asyncio.create_task(reconcile_autoscalers(self.emulator, namespace))
        self._side_tasks.add(task)  # the loop holds tasks weakly
        task.add_done_callback(self._side_tasks.discard)
        task.add_done_callback(done)

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
            failure = Failure(annotations[FAIL_ANNOTATION], "back-off 10s restarting failed container")
        desired = await self._desired(kind, obj)
        generation = int(obj["metadata"].get("generation", 1))

        if kind == "Job":
            await self._reconcile_job(obj, desired, held, failure)
            return

        previous_ready = int(
            (obj.get("status") or {}).get("readyReplicas") or (obj.get("status") or {}).get("numberReady") or 0
        )
        same_generation = int((obj.get("status") or {}).get("observedGeneration", 0)) == generation
        plans = self._plan(kind, obj, desired)
        runnable = sum(plan.runnable for plan in plans)
        self._note_blocked(kind, obj, runnable < len(plans))
        ready = min(previous_ready, runnable) if same_generation else 0
        await self._sync(obj, plans, ready, failure)
        await self._write(kind, obj, desired, ready, updated=desired if same_generation else 0)
        if held or failure is not None:
            return  # observed, never ready: Helm's wait runs into its timeout (or sees the failure)
        await asyncio.sleep(self.ready_delay)
        await self._write(kind, obj, desired, ready, updated=desired)
        # Pods that cannot be scheduled or started never turn ready: the workload stalls as on a cluster.
        while ready < runnable:
            if self.step_delay:
                ready += 1
                await asyncio.sleep(self.step_delay if ready > 1 else 0)
            else:
                ready = runnable
            await self._sync(obj, plans, ready, None)
            await self._write(kind, obj, desired, ready, updated=desired)
        await self._sync(obj, plans, ready, None)
        await self._write(kind, obj, desired, ready, updated=desired)

    async def _sync(
        self, obj: JSON, plans: list[PodPlan], ready: int, failure: Failure | None, *, succeeded: bool = False
    ) -> None:
        """Write the pods (sync_pods), then the log of each container instance that has just run."""
        await sync_pods(self.emulator, obj, plans, ready, failure, succeeded=succeeded)
        namespace = obj["metadata"].get("namespace")
        for plan in plans:
            pod = self.emulator.get_object("v1", "Pod", namespace, plan.name)
            if pod is not None:
                self.logs.record_starts(pod)

    def _note_blocked(self, kind: str, obj: JSON, blocked: bool) -> None:
        key = (kind, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if blocked:
            self._blocked.add(key)
        else:
            self._blocked.discard(key)

    def _plan(self, kind: str, obj: JSON, desired: int) -> list[PodPlan]:
        pinned = self._daemon_nodes(obj) if kind == "DaemonSet" else None
        return plan_pods(self.emulator, obj, desired, pinned=pinned, unreachable=self.unreachable_registries)

    def _daemon_nodes(self, obj: JSON) -> list[str]:
        # A DaemonSet runs on every node its pods may go to (selector, affinity, taints), ready or not.
        spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        return sorted(n["metadata"]["name"] for n in self.emulator.peek_objects("v1", "Node") if eligible(spec, n))

    async def _desired(self, kind: str, obj: JSON) -> int:
        spec = obj.get("spec") or {}
        if kind == "DaemonSet":
            return len(self._daemon_nodes(obj))
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
                        "message": f'ReplicaSet "{meta["name"]}-{template_hash(obj)}" '
                        + ("has successfully progressed." if available else "is progressing."),
                        "lastUpdateTime": _now(),
                        "lastTransitionTime": _now(),
                    },
                ],
            }
        elif kind == "StatefulSet":
            revision = f"{meta['name']}-{template_hash(obj)}"
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

    async def _reconcile_job(self, obj: JSON, completions: int, held: bool, failure: Failure | None) -> None:
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
        plans = self._plan("Job", obj, completions)
        self._note_blocked("Job", obj, not all(plan.runnable for plan in plans))
        await self._sync(obj, plans, 0, failure)
        if held or not all(plan.runnable for plan in plans):
            return  # unschedulable or blocked pods: the Job stays active, as on a cluster
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
        await self._sync(obj, plans, completions, None, succeeded=True)
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
