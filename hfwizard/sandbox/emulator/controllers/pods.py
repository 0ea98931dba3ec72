"""A workload's pods: where each goes (the scheduler), whether it can start (the kubelet), and their objects."""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from hfwizard.sandbox.emulator.api import JSON
from hfwizard.sandbox.emulator.controllers import kubelet
from hfwizard.sandbox.emulator.controllers.scheduler import Placement, place, pod_requests
from hfwizard.sandbox.emulator.store import Store

__all__ = ["Blocked", "Failure", "PodPlan", "plan_pods", "sync_pods"]


def now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_NEVER_STARTED = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                            "CreateContainerConfigError", "CreateContainerError", "RunContainerError"})


@attrs.frozen
class Failure:
    """A crash the player was told to play (hold/fail steering): reason and message of the container."""

    reason: str
    message: str

    @property
    def ran(self) -> bool:
        """The container started before it failed (a crash), unlike an image it never pulled or a
        configuration it could not be created from: only then is there a log and a last state."""
        return self.reason not in _NEVER_STARTED


@attrs.frozen
class Blocked:
    """Why a pod cannot run, as the cluster shows it: the container's waiting state and a Warning event."""

    waiting_reason: str  # "" for a pod never scheduled (it has no container statuses)
    waiting_message: str
    event_reason: str
    event_message: str
    component: str


@attrs.frozen
class PodPlan:
    name: str
    node: str | None
    blocked: Blocked | None
    warnings: tuple[tuple[str, str], ...] = ()  # (event reason, message) that do not stop the pod

    @property
    def runnable(self) -> bool:
        return self.blocked is None


def _usage(store: Store, skip_owner: str | None) -> dict[str, dict[str, float]]:
    usage: dict[str, dict[str, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    for pod in store.peek_objects("v1", "Pod"):  # read only: copying every Pod per placement was quadratic
        node = (pod.get("spec") or {}).get("nodeName")
        refs = pod["metadata"].get("ownerReferences") or []
        if not node or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        if skip_owner and any(r.get("uid") == skip_owner for r in refs):
            continue  # the owner's own pods are placed afresh
        for resource, amount in pod_requests(pod.get("spec") or {}).items():
            usage[node][resource] += amount
    return usage


def plan_pods(
    store: Store,
    owner: JSON,
    desired: int,
    *,
    pinned: list[str] | None = None,
    unreachable: Mapping[str, str] | None = None,
) -> list[PodPlan]:
    """Place the owner's `desired` pods on nodes (DaemonSets pass `pinned`, one node per pod) and ask
    the kubelet whether each can start."""
    meta = owner["metadata"]
    spec = ((owner.get("spec") or {}).get("template") or {}).get("spec") or {}
    nodes = store.peek_objects("v1", "Node")  # read only (place() reads them)
    usage = _usage(store, meta.get("uid"))
    plans = []
    for index in range(desired):
        candidates = [n for n in nodes if n["metadata"]["name"] == pinned[index]] if pinned else nodes
        placement: Placement = place(spec, candidates, usage)
        name = f"{meta['name']}-{index}"
        if placement.node is None:
            unscheduled = Blocked("", "", "FailedScheduling", placement.message, "default-scheduler")
            plans.append(PodPlan(name, None, unscheduled))
            continue
        for resource, amount in pod_requests(spec).items():
            usage[placement.node][resource] += amount
        problem = kubelet.check(store, meta.get("namespace"), spec, unreachable)
        blocked = None if problem is None else Blocked(*problem, component="kubelet")
        missing = kubelet.missing_pull_secrets(store, meta.get("namespace"), spec)
        warnings = (
            (("FailedToRetrieveImagePullSecret",
              f"Unable to retrieve some image pull secrets ({', '.join(missing)}); "
              "attempting to pull the image may not succeed."),)
            if missing
            else ()
        )
        plans.append(PodPlan(name, placement.node, blocked, warnings))
    return plans


async def sync_pods(
    store: Store, owner: JSON, plans: list[PodPlan], ready: int, failure: Failure | None, *, succeeded: bool = False
) -> None:
    """Write the owner's pods: the first `ready` runnable ones ready, the rest waiting, crashing
    (`failure`) or unscheduled, each blocked pod with its Warning event."""
    meta = owner["metadata"]
    namespace = meta.get("namespace")
    wanted = {plan.name for plan in plans}
    for pod in store.peek_objects("v1", "Pod", namespace):  # read only; deletes go through the store
        refs = pod["metadata"].get("ownerReferences") or []
        if any(r.get("uid") == meta.get("uid") for r in refs) and pod["metadata"]["name"] not in wanted:
            await store.delete_object("v1", "Pod", namespace, pod["metadata"]["name"])
    runnable_seen = 0
    for index, plan in enumerate(plans):
        pod_ready = plan.runnable and failure is None and runnable_seen < ready
        runnable_seen += plan.runnable
        pod = _pod(owner, index, plan, pod_ready, failure if plan.runnable else None, succeeded and plan.runnable)
        existing = store.get_object("v1", "Pod", namespace, plan.name)
        if (
            existing is None
            or {k: existing.get(k) for k in ("spec", "status")} != {k: pod.get(k) for k in ("spec", "status")}
            or (existing["metadata"].get("labels") or {}) != pod["metadata"]["labels"]
        ):
            await store.upsert(pod)
        for reason, message in plan.warnings:
            await event(store, namespace, plan.name, reason, message, "kubelet")
        if plan.blocked is not None:
            b = plan.blocked
            await event(store, namespace, plan.name, b.event_reason, b.event_message, b.component)
        elif failure is not None:
            await event(store, namespace, plan.name, "BackOff", f"{failure.reason}: {failure.message}", "kubelet")


def _pod(owner: JSON, index: int, plan: PodPlan, ready: bool, failure: Failure | None, succeeded: bool) -> JSON:
    meta = owner["metadata"]
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    containers = (template.get("spec") or {}).get("containers") or [{"name": "main", "image": ""}]
    if plan.node is None:
        phase, statuses = "Pending", None
    else:
        phase = "Succeeded" if succeeded else "Running" if ready or failure else "Pending"
        revision = template_hash(owner)
        statuses = [
            _container_status(c, container_id(revision, index, c.get("name", "main")), ready, failure, succeeded,
                              plan.blocked)
            for c in containers
        ]
    scheduled: JSON = {"type": "PodScheduled", "status": "True"}
    if plan.node is None and plan.blocked is not None:
        scheduled = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": plan.blocked.event_message}
    conditions = [scheduled]
    if plan.node is not None:
        conditions += [
            {"type": "Ready", "status": "True" if ready else "False"}
            | ({} if ready else {"reason": "ContainersNotReady"}),
            {"type": "ContainersReady", "status": "True" if ready else "False"},
        ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": plan.name,
            "namespace": meta.get("namespace"),
            "labels": dict((template.get("metadata") or {}).get("labels") or {}),
            "annotations": (template.get("metadata") or {}).get("annotations") or {},
            "ownerReferences": [
                {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
                 "uid": meta.get("uid", ""), "controller": True, "blockOwnerDeletion": True}
            ],
        },
        "spec": {**(template.get("spec") or {}), "nodeName": plan.node},
        "status": {"phase": phase, "conditions": conditions, "containerStatuses": statuses,
                   "podIP": f"10.244.0.{index + 10}" if plan.node else None},
    }
    return drop_none(pod)


def _container_status(
    container: JSON,
    container_id: str,
    ready: bool,
    failure: Failure | None,
    succeeded: bool,
    blocked: Blocked | None,
) -> JSON:
    state: JSON
    last: JSON | None = None
    cid = f"containerd://{container_id}"
    if blocked is not None:
        state = {"waiting": {"reason": blocked.waiting_reason, "message": blocked.waiting_message}}
    elif failure is not None:
        state = {"waiting": {"reason": failure.reason, "message": failure.message}}
        if failure.ran:
            # It started and exited: the kubelet keeps that run as the last state (its log is `--previous`).
            last = {"terminated": {"exitCode": 1, "reason": "Error", "containerID": cid}}
    elif succeeded:
        state = {"terminated": {"exitCode": 0, "reason": "Completed", "containerID": cid}}
    elif ready:
        state = {"running": {"startedAt": now()}}
    else:
        state = {"waiting": {"reason": "ContainerCreating"}}
    return {
        "name": container.get("name", "main"),
        "image": container.get("image", ""),
        "imageID": f"sandbox://{container.get('image', '')}",
        "containerID": cid,
        "ready": ready,
        "started": ready,
        "restartCount": 5 if failure is not None and failure.ran else 0,
        "state": state,
        "lastState": last,
    }


async def event(store: Store, namespace: str | None, pod: str, reason: str, message: str, component: str) -> None:
    """One Warning event per pod and reason (its message kept current), as kubelet and scheduler record."""
    name = f"{pod}.{reason.lower()}"
    existing = store.get_object("v1", "Event", namespace, name)
    if existing is not None and existing.get("message") == message:
        return
    await store.upsert(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": namespace},
            "reason": reason,
            "type": "Warning",
            "count": int((existing or {}).get("count", 0)) + 1,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": (existing or {}).get("firstTimestamp") or now(),
            "lastTimestamp": now(),
        }
    )


def container_id(template: str, index: int, container: str) -> str:
    """A container's runtime id: new with each pod template (its `template_hash`: a rollout starts new
    containers), one per container of a pod, as containerd's are."""
    return hashlib.sha256(f"{template}/{index}/{container}".encode()).hexdigest()


def template_hash(obj: JSON) -> str:
    template = (obj.get("spec") or {}).get("template") or {}
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


def call_on_loop(loop: asyncio.AbstractEventLoop | None, callback: Callable[[], None]) -> None:
    """Run `callback` on the emulator's `loop`: at once when already on it, else handed over thread-safely
    (tests steer the controllers from their own thread). Nothing to do before the loop has started."""
    if loop is None:
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        callback()
    else:
        loop.call_soon_threadsafe(callback)
