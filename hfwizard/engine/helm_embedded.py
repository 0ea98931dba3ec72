"""The embedded Helm backend (parent side): Helm's Go SDK (helm-python-sdk) in a child process.

Why a child: client-go and klog write straight to file descriptor 2, which would garble a Textual
screen, and a ctypes call into Go cannot be interrupted from Python. In a child, its stderr lines
become log events, and a call is cancelled through its own Helm context (Helm records the release as
failed rather than leaving it pending). The child also ends with us: it runs in its own session, so
nothing else would stop a Helm call that an installer killed with SIGKILL left behind, racing the
`resume` that follows. The child's side, and how it dies with us in every case (death signal, life
pipe), is `hfwizard.engine.helm_child`; the pipes, threads and reaping on our side are
`hfwizard.engine.helm_process`.

One child serves every call of a backend, several at once (each in a thread of the child, answered
by id): the engine's four releases at a time cost one Python and one Go runtime, not four, and no
call pays Helm's start-up (0.15 s on an idle machine, several times that on a busy one) but the
first. `prewarm()` starts that child ahead of the first call. `per_call=True` gives each call a child
of its own (as `helm install` from a shell would), ended with the call. A call that is cancelled
cancels its own Helm context only; `aclose()` (or `async with`) ends the child, cancelling whatever
is still in flight. A child that ends on its own (a crash, SIGKILL, the OOM killer) fails every call
in flight with its exit status and the tail of its stderr, and the next call starts a new one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

from hfwizard.engine.helm import (
    ChartLike,
    ChartRef,
    HelmCancelled,
    HelmTimeout,
    LogSink,
    ReleaseInfo,
    ReleaseNotFound,
    error_from_text,
)
from hfwizard.engine.helm_process import GRACE_S, HelmProcess

__all__ = ["EmbeddedHelm"]

_READ_GUARD_S = 300.0  # a read (status, history, list) that has not answered by then never will
_GUARD_MARGIN_S = 60.0  # Helm enforces a call's own timeout; ours only catches a child that hangs


class EmbeddedHelm:
    """Helm through the Go SDK in a child process; fits `hfwizard.engine.helm.HelmBackend`.

    Whoever creates one closes it with `aclose()` (or `async with`) when done: that ends its child
    (and, with `per_call=True`, the children started ahead by `prewarm`). One left open is ended with
    our process all the same (parent-death signal, life pipe).
    """

    def __init__(
        self,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        *,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        on_log: LogSink | None = None,
        per_call: bool = False,
    ) -> None:
        self.kubeconfig = os.fspath(kubeconfig) if kubeconfig is not None else None
        self.context = context
        self.per_call = per_call
        self.last_pid: int | None = None  # the child that served the latest call (diagnostics, tests)
        self._python = python
        self._env = dict(env) if env is not None else None
        self._on_log = on_log
        self._shared: HelmProcess | None = None
        self._warm: list[HelmProcess] = []  # per_call: started ahead, not yet claimed; oldest first
        self._retired: list[HelmProcess] = []  # shared children told to end once their calls answer

    async def __aenter__(self) -> EmbeddedHelm:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def child_pid(self) -> int | None:
        """The shared child's pid while it can take calls (None before the first, or with `per_call`)."""
        child = self._shared
        return child.pid if child is not None and child.usable(self._child_env()) else None

    @property
    def warm_pids(self) -> list[int]:
        """With `per_call`: the children started ahead and waiting for calls, the next call's first."""
        return [child.pid for child in self._warm]

    async def prewarm(self, count: int = 1) -> None:
        """Start the child ahead of the first call (with `per_call`, `count` of them), so it loads Helm
        while we do other work. A failure to start is not an error here: the call will report it."""
        env = self._child_env()
        try:
            if not self.per_call:
                self._shared_child(env)
                return
            for child in [c for c in self._warm if not c.usable(env)]:
                self._warm.remove(child)
                child.abandon()
            while len(self._warm) < count:
                self._warm.append(HelmProcess(self._python, env))
        except OSError:
            return

    async def aclose(self) -> None:
        """End our children and wait until they are reaped; a call still in flight is cancelled (its
        release recorded failed) and fails. The backend stays usable: a next call starts a new child."""
        children = [c for c in (self._shared, *self._warm, *self._retired) if c is not None]
        self._shared, self._warm, self._retired = None, [], []
        await asyncio.gather(*(child.end() for child in children))

    # ---- the backend API ---------------------------------------------------------------------

    async def install_or_upgrade(
        self,
        release: str,
        chart: ChartLike,
        namespace: str,
        values: Mapping[str, Any],
        *,
        version: str | None = None,
        wait: bool = True,
        timeout_s: float = 600.0,
        create_namespace: bool = False,
        atomic: bool = False,
        on_log: LogSink | None = None,
    ) -> ReleaseInfo:
        result = await self._call(
            "install_or_upgrade",
            {
                "release": release,
                "chart": ChartRef.parse(chart).to_json(),
                "namespace": namespace,
                "values": dict(values),
                "version": version,
                "wait": wait,
                "timeout_s": timeout_s,
                "create_namespace": create_namespace,
                "atomic": atomic,
            },
            on_log=on_log,
            timeout_s=timeout_s,
        )
        return ReleaseInfo.from_summary(result)

    async def status(self, release: str, namespace: str) -> ReleaseInfo:
        return ReleaseInfo.from_summary(
            await self._call("status", {"release": release, "namespace": namespace})
        )

    async def release_objects(self, release: str, namespace: str) -> list[tuple[str, str, str]]:
        """The manifest is parsed in the child: only kinds and names cross (it can hold Secrets)."""
        rows = await self._call("objects", {"release": release, "namespace": namespace})
        return [(str(k), str(n), str(ns)) for k, n, ns in rows]

    async def history(self, release: str, namespace: str) -> list[ReleaseInfo]:
        rows = await self._call("history", {"release": release, "namespace": namespace})
        return [ReleaseInfo.from_summary(row) for row in rows]

    async def rollback(
        self,
        release: str,
        namespace: str,
        revision: int | None = None,
        *,
        wait: bool = True,
        timeout_s: float = 600.0,
        on_log: LogSink | None = None,
    ) -> ReleaseInfo:
        result = await self._call(
            "rollback",
            {
                "release": release,
                "namespace": namespace,
                "revision": revision,
                "wait": wait,
                "timeout_s": timeout_s,
            },
            on_log=on_log,
            timeout_s=timeout_s,
        )
        return ReleaseInfo.from_summary(result)

    async def uninstall(
        self,
        release: str,
        namespace: str,
        *,
        wait: bool = True,
        timeout_s: float = 600.0,
        on_log: LogSink | None = None,
    ) -> None:
        await self._call(
            "uninstall",
            {"release": release, "namespace": namespace, "wait": wait, "timeout_s": timeout_s},
            on_log=on_log,
            timeout_s=timeout_s,
        )

    async def render(
        self,
        release: str,
        chart: ChartLike,
        namespace: str,
        values: Mapping[str, Any],
        *,
        version: str | None = None,
    ) -> dict[str, str]:
        """`helm template`: path of each template -> rendered manifest; no cluster is contacted."""
        result = await self._call(
            "render",
            {
                "release": release,
                "chart": ChartRef.parse(chart).to_json(),
                "namespace": namespace,
                "values": dict(values),
                "version": version,
            },
        )
        return dict(result)

    async def list_releases(
        self, namespace: str | None = None, *, all_states: bool = True
    ) -> list[ReleaseInfo]:
        rows = await self._call("list", {"namespace": namespace, "all_states": all_states})
        return [ReleaseInfo.from_summary(row) for row in rows]

    async def recover_pending(self, release: str, namespace: str) -> ReleaseInfo | None:
        """Unstick a release a killed process left pending.

        A pending upgrade or rollback is rolled back to the last deployed revision; a pending first
        install (nothing ever deployed) is uninstalled, which removes its release record and whatever
        it had created. Returns the release as it stands afterwards (None when it was removed), or
        the unchanged release when it was not pending.
        """
        result = await self._call("recover_pending", {"release": release, "namespace": namespace})
        return ReleaseInfo.from_summary(result) if result else None

    # ---- the child process -------------------------------------------------------------------

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ if self._env is None else self._env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # Go's collector at its default (GOGC=100) took about a sixth of the child's CPU in a whole
        # rehearsal; 400 saves that for about 60 MiB more heap, and the soft memory limit makes it
        # collect harder rather than grow past 512 MiB. The operator's own settings win.
        env.setdefault("GOGC", "400")
        env.setdefault("GOMEMLIMIT", "512MiB")
        return env

    def _shared_child(self, env: dict[str, str]) -> HelmProcess:
        """The child every call shares; a new one when it has ended or the environment changed (the
        old one then ends once its calls have answered)."""
        child = self._shared
        if child is not None and child.usable(env):
            return child
        self._retired = [c for c in self._retired if not c.exited.is_set()]
        if child is not None:
            child.finish()
            self._retired.append(child)
        self._shared = HelmProcess(self._python, env)
        return self._shared

    def _own_child(self, env: dict[str, str]) -> HelmProcess:
        """With `per_call`: the oldest warm child that still fits, else a new one."""
        while self._warm:
            child = self._warm.pop(0)
            if child.usable(env):
                return child
            child.abandon()
        return HelmProcess(self._python, env)

    async def _call(
        self, op: str, args: dict[str, Any], *, on_log: LogSink | None = None, timeout_s: float | None = None
    ) -> Any:
        sink = on_log or self._on_log
        request = {"op": op, "kubeconfig": self.kubeconfig, "context": self.context, **args}
        env = self._child_env()
        child = self._own_child(env) if self.per_call else self._shared_child(env)
        self.last_pid = child.pid
        call_id, answer = child.submit(request, sink)
        if self.per_call:
            child.finish()  # its one call: it ends once it has answered
        guard = _READ_GUARD_S if timeout_s is None else timeout_s + _GUARD_MARGIN_S
        try:
            reply = await asyncio.wait_for(asyncio.shield(answer), guard)
        except TimeoutError:
            await self._stop(child, call_id, answer)
            raise HelmTimeout(
                f"Helm's child process gave no answer to {op} within {guard:.0f} s",
                remedy="the cluster may be unreachable; look at the log above, then `hfwizard resume`",
            ) from None
        except asyncio.CancelledError:
            await asyncio.shield(self._stop(child, call_id, answer))
            raise
        finally:
            if self.per_call:
                await asyncio.shield(child.end())
        return _result(reply)

    async def _stop(self, child: HelmProcess, call_id: str, answer: asyncio.Future[dict[str, Any]]) -> None:
        """Cancel one call and give Helm its grace to record it (the release failed, not pending)."""
        if self.per_call:
            child.signal(signal.SIGTERM)  # its only call: the child cancels it and ends
        else:
            child.cancel(call_id)
        try:
            await asyncio.wait_for(asyncio.shield(answer), GRACE_S)
        except BaseException:
            answer.cancel()  # nobody waits for it any more (and no "never retrieved" warning)
        finally:
            child.forget(call_id)


def _result(reply: dict[str, Any]) -> Any:
    if reply.get("ok"):
        return reply.get("result")
    message = str(reply.get("error") or "Helm's child process answered with an error but no message")
    error = error_from_text(message)
    if reply.get("kind") == "not_found" and not isinstance(error, ReleaseNotFound):
        error = ReleaseNotFound(message)
    if reply.get("kind") == "cancelled" and not isinstance(error, HelmTimeout):
        error = HelmCancelled(message)  # Helm reports a deadline as a cancelled context too
    raise error
