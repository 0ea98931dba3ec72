"""Pods made directly (no owner): scheduled, checked by the kubelet, and their containers run to an end.

A bare pod is what a one-off probe makes (hfwizard's in-cluster outbound check: curl against the
registry and Clerk). Nothing runs here, so each container ends as its command would, given which hosts
the cluster's pods may reach (`egress`): a container whose command names an http(s) URL exits 0 when
the host is reachable and with curl's own exit code and words when it is not (DNS, refused, timeout);
a container naming no URL exits 0. curl's `-w '%output{/dev/termination-log}...'` write-out, when
given, becomes the termination message; otherwise a failing container with `FallbackToLogsOnError`
gets its last log line (curl's error), as on a real node.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

import attrs

from hfwizard.sandbox.emulator.api import JSON, WatchEvent
from hfwizard.sandbox.emulator.controllers import kubelet
from hfwizard.sandbox.emulator.controllers.pods import _usage, drop_none, event, now
from hfwizard.sandbox.emulator.controllers.scheduler import place
from hfwizard.sandbox.emulator.store import Store

__all__ = ["EGRESS_FAILURES", "BarePods", "parse_egress"]

# How a blocked host fails, as curl reports it: (exit code, error message with {host} and {port}).
EGRESS_FAILURES: Mapping[str, tuple[int, str]] = {
    "dns": (6, "Could not resolve host: {host}"),
    "refused": (7, "Failed to connect to {host} port {port} after 2 ms: Could not connect to server"),
    "timeout": (28, "Connection timed out after 5002 milliseconds"),
}
_TERMINATION_LOG = "%output{/dev/termination-log}"


def parse_egress(entries: Collection[str]) -> dict[str, str]:
    """`HOST[:PORT][=dns|refused|timeout]` entries (the emulator's --blocked-egress) as host -> how."""
    out: dict[str, str] = {}
    for entry in entries:
        host, _, how = entry.partition("=")
        how = how or "refused"
        if how not in EGRESS_FAILURES or not host:
            raise ValueError(f"blocked egress {entry!r}: want HOST[:PORT][=dns|refused|timeout]")
        out[host.lower()] = how
    return out


def _url_of(container: JSON) -> str | None:
    words = [*(container.get("command") or []), *(container.get("args") or [])]
    return next((w for w in words if isinstance(w, str) and w.startswith(("http://", "https://"))), None)


def _write_out(container: JSON) -> str | None:
    words = [*(container.get("command") or []), *(container.get("args") or [])]
    for flag, value in itertools.pairwise(words):
        if flag in ("-w", "--write-out") and isinstance(value, str) and value.startswith(_TERMINATION_LOG):
            return value.removeprefix(_TERMINATION_LOG)
    return None


def container_end(container: JSON, egress: Mapping[str, str]) -> tuple[int, str]:
    """(exit code, termination message) of a container that runs to its end."""
    url = _url_of(container)
    if url is None:
        return 0, ""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    how = egress.get(f"{host}:{port}") or egress.get(host)
    if how is None:
        code, error, http = 0, "", 401 if parts.path.startswith("/v2") else 200  # a registry asks for a token
    else:
        code, template = EGRESS_FAILURES[how]
        error, http = template.format(host=host, port=port), 0
    write_out = _write_out(container)
    if write_out is not None:
        fields = {"http_code": f"{http:03d}", "errormsg": error, "exitcode": str(code)}
        return code, re.sub(r"%\{(\w+)\}", lambda m: fields.get(m.group(1), ""), write_out)
    if code and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
        return code, f"curl: ({code}) {error}"
    return code, ""


@attrs.define
class BarePods:
    """Plays the scheduler and kubelet for pods nobody owns; steered through `egress` (host -> how it fails)."""

    store: Store
    unreachable_registries: Mapping[str, str] = attrs.field(factory=dict)  # registry -> cause (kubelet)
    egress: dict[str, str] = attrs.field(factory=dict)
    run_delay: float = 0.05  # seconds a container "runs" before it ends
    _tasks: dict[tuple[str | None, str], asyncio.Task[None]] = attrs.field(factory=dict, init=False)

    def on_event(self, ev: WatchEvent) -> None:
        meta = ev.object["metadata"]
        if meta.get("ownerReferences"):
            return  # a workload's pod: the controller player writes it
        key = (meta.get("namespace"), meta["name"])
        if ev.type == "DELETED":
            task = self._tasks.pop(key, None)
            if task is not None:
                task.cancel()
            return
        if key in self._tasks or (ev.object.get("spec") or {}).get("nodeName"):
            return  # already playing it (our own writes come back as events), or placed by someone else
        self._tasks[key] = asyncio.create_task(self._play(*key), name=f"bare pod {key[0]}/{key[1]}")

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _play(self, namespace: str | None, name: str) -> None:
        pod = self.store.get_object("v1", "Pod", namespace, name)
        if pod is None:
            return
        spec = pod.get("spec") or {}
        placement = place(spec, self.store.peek_objects("v1", "Node"), _usage(self.store, None))
        if placement.node is None:
            pod["status"] = {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": placement.message}]}
            await self.store.upsert(pod)
            await event(self.store, namespace, name, "FailedScheduling", placement.message, "default-scheduler")
            return
        pod["spec"] = {**spec, "nodeName": placement.node}
        containers = spec.get("containers") or []
        problem = kubelet.check(self.store, namespace, spec, self.unreachable_registries)
        if problem is not None:
            waiting_reason, waiting_message, event_reason, event_message = problem
            pod["status"] = _status("Pending", [
                {"name": c.get("name"), "image": c.get("image"), "imageID": "", "ready": False, "restartCount": 0,
                 "state": {"waiting": {"reason": waiting_reason, "message": waiting_message}}} for c in containers])
            await self.store.upsert(pod)
            await event(self.store, namespace, name, event_reason, event_message, "kubelet")
            return
        started = now()
        pod["status"] = _status("Running", [_state(c, {"running": {"startedAt": started}}) for c in containers])
        await self.store.upsert(pod)
        await asyncio.sleep(self.run_delay)
        if spec.get("restartPolicy", "Always") == "Always":
            return  # a long-running bare pod stays Running
        ends = [container_end(c, self.egress) for c in containers]
        statuses = [_state(c, {"terminated": drop_none({
            "exitCode": code, "reason": "Completed" if code == 0 else "Error", "message": message or None,
            "startedAt": started, "finishedAt": now()})}) for c, (code, message) in zip(containers, ends, strict=True)]
        current = self.store.get_object("v1", "Pod", namespace, name)
        if current is None:
            return  # deleted while it ran
        current["status"] = _status("Succeeded" if all(code == 0 for code, _ in ends) else "Failed", statuses)
        await self.store.upsert(current)


def _state(container: JSON, state: JSON) -> JSON:
    return {"name": container.get("name"), "image": container.get("image"),
            "imageID": f"sandbox://{container.get('image', '')}", "containerID": f"containerd://{container.get('name')}",
            "ready": "running" in state, "started": "running" in state, "restartCount": 0, "state": state}


def _status(phase: str, containers: list[JSON]) -> JSON:
    return {"phase": phase, "startTime": now(), "containerStatuses": containers,
            "conditions": [{"type": "PodScheduled", "status": "True"}]}
