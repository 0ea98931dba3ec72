"""The embedded Helm backend (parent side): Helm's Go SDK (helm-python-sdk) in a child process per call.

Why a child: client-go and klog write straight to file descriptor 2, which would garble a Textual
screen, and a ctypes call into Go cannot be interrupted from Python. In a child, its stderr lines
become log events, and cancelling is ending the child (SIGTERM cancels Helm's context first, so
Helm records the release as failed rather than leaving it pending; SIGKILL after a grace period).
The child also ends with us: it runs in its own session, so nothing else would stop a Helm call that
an installer killed with SIGKILL left behind, racing the `resume` that follows. The child's side, and
how it dies with us in every case (death signal, life pipe), is `hfwizard.engine.helm_child`.

Protocol: the parent writes one JSON request to the child's stdin (values travel there, never in
argv or the environment, as they may hold secrets) and reads one JSON answer from its stdout.

Warm children: a child starts Python and loads the Go library (0.15 s on an idle machine, several
times that on a busy one or with a cold page cache) *before* it reads its request, so it can be
started ahead of its call. With `warm=True`, `prewarm()` starts one now, and every call, once it has
claimed its child, starts the next one, so that Helm's start-up overlaps whatever the caller does
in between (the engine: importing the kubernetes client, the namespace and Secrets steps, the
previous release). A warm child holds nothing but its environment: the request still goes over
stdin when a call claims it. `aclose()` ends a warm child nobody claimed; one that outlives its
parent ends like any child (parent-death signal, or EOF on its stdin), without touching Helm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import deque
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

__all__ = ["EmbeddedHelm"]

_GRACE_S = 5.0  # after SIGTERM, how long Helm gets to record the cancellation before SIGKILL
_ERROR_CONTEXT_LINES = 20


class EmbeddedHelm:
    """Helm through the Go SDK, one child process per call; fits `hfwizard.engine.helm.HelmBackend`.

    `warm=True` keeps the next call's child started ahead of time (see the module docstring); whoever
    creates such a backend closes it with `aclose()` (or `async with`) on the event loop it used.
    """

    def __init__(
        self,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        *,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        on_log: LogSink | None = None,
        warm: bool = False,
    ) -> None:
        self.kubeconfig = os.fspath(kubeconfig) if kubeconfig is not None else None
        self.context = context
        self.warm = warm
        self.last_pid: int | None = None  # the child that served the latest call (diagnostics, tests)
        self._python = python
        self._env = dict(env) if env is not None else None
        self._on_log = on_log
        self._warm: list[_Child] = []  # started, not yet claimed by a call; oldest first
        self._spawning = 0

    async def __aenter__(self) -> EmbeddedHelm:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def warm_pids(self) -> list[int]:
        """The pids of the started children waiting for calls, the next call's first."""
        return [child.proc.pid for child in self._warm]

    async def prewarm(self, count: int = 1) -> None:
        """Have `count` children started for the next calls (unless they are), so they load Helm
        while we do other work. A failure to start one is not an error: a call starts its own."""
        env = self._child_env()
        for child in [c for c in self._warm if not c.usable(env)]:
            self._warm.remove(child)
            child.abandon()
        while len(self._warm) + self._spawning < count:
            self._spawning += 1
            try:
                child = await self._spawn(env)
            except OSError:
                return
            finally:
                self._spawning -= 1
            self._warm.append(child)

    async def aclose(self) -> None:
        """End the warm children no call claimed, and wait for them. The backend stays usable."""
        children, self._warm = self._warm, []
        for child in children:
            child.abandon()  # all are signalled before we wait for any
        for child in children:
            await child.end()

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
        return env

    async def _spawn(self, env: dict[str, str]) -> _Child:
        # The life pipe: only we hold its write end, so the child reads EOF the moment we are gone,
        # however we went (its watchdog thread then ends it). Not inherited by anything else we start.
        life_read, life_write = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                self._python,
                "-m",
                "hfwizard.engine.helm_child",
                "--parent",
                str(os.getpid()),  # lets the child tell that we died before it could ask to die with us
                "--life-fd",
                str(life_read),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # a Ctrl-C on the terminal reaches us, not Helm directly
                pass_fds=(life_read,),
            )
        except BaseException:
            os.close(life_write)
            raise
        finally:
            os.close(life_read)
        return _Child(proc, env, life_write)

    def _take_warm(self, env: dict[str, str]) -> _Child | None:
        """The oldest warm child that can serve a call now (same environment, process and event loop,
        alive); those that cannot are ended."""
        while self._warm:
            child = self._warm.pop(0)
            if child.usable(env):
                return child
            child.abandon()
        return None

    async def _call(
        self, op: str, args: dict[str, Any], *, on_log: LogSink | None = None, timeout_s: float | None = None
    ) -> Any:
        sink = on_log or self._on_log
        request = json.dumps({"op": op, "kubeconfig": self.kubeconfig, "context": self.context, **args})
        env = self._child_env()
        child = self._take_warm(env) or await self._spawn(env)
        child.claim(sink)
        proc = child.proc
        self.last_pid = proc.pid
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(request.encode())
            await proc.stdin.drain()
            proc.stdin.close()
            if self.warm:
                await self.prewarm()  # the next call's child loads Helm while this one works
            # Helm enforces its own timeout; ours only guards against a child that hangs for good.
            guard = None if timeout_s is None else timeout_s + 60.0
            output = await asyncio.wait_for(proc.stdout.read(), guard)
            await proc.wait()
            await child.pump
        except BaseException:
            await _end(proc)
            child.pump.cancel()
            raise
        finally:
            if proc.returncode is not None:
                child.close_life()
        try:
            answer = json.loads(output.decode() or "{}")
        except ValueError:
            answer = {}
        if answer.get("ok"):
            return answer.get("result")
        message = answer.get("error") or (
            f"Helm's child process exited with {proc.returncode}: " + (" | ".join(child.tail) or "no output")
        )
        error = error_from_text(message)
        if answer.get("kind") == "not_found" and not isinstance(error, ReleaseNotFound):
            error = ReleaseNotFound(message)
        if answer.get("kind") == "cancelled" and not isinstance(error, HelmTimeout):
            error = HelmCancelled(message)  # Helm reports a deadline as a cancelled context too
        raise error


class _Child:
    """One started child and the task reading its stderr. Lines a warm child writes before a call
    claims it are kept and handed to that call's log sink when it does."""

    def __init__(self, proc: asyncio.subprocess.Process, env: dict[str, str], life: int) -> None:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self.env = env
        self.life: int | None = life  # our end of the life pipe; closed once the child is reaped
        self.owner = os.getpid()
        self.loop = asyncio.get_running_loop()
        self.tail: deque[str] = deque(maxlen=_ERROR_CONTEXT_LINES)
        self._claimed = False
        self._early: deque[str] = deque(maxlen=1000)
        self._sink: LogSink | None = None
        self._abandoned = False
        self.pump = asyncio.create_task(self._pump_stderr())

    async def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            self.tail.append(line)
            if not self._claimed:
                self._early.append(line)
            elif self._sink is not None:
                self._sink(line)

    def _here(self) -> bool:
        """Started by this process, on the event loop now running."""
        try:
            return asyncio.get_running_loop() is self.loop and self.owner == os.getpid()
        except RuntimeError:
            return False

    def usable(self, env: dict[str, str]) -> bool:
        return self._here() and self.env == env and self.proc.returncode is None and not self.pump.done()

    def claim(self, sink: LogSink | None) -> None:
        self._claimed, self._sink = True, sink
        while self._early:
            line = self._early.popleft()
            if sink is not None:
                sink(line)

    async def end(self) -> None:
        """End an unclaimed child and reap it. It has no request, so SIGTERM ends it without any
        Helm work to cancel (before its request, SIGTERM keeps its default action)."""
        if not self._here():
            self.abandon()
            return
        self._abandoned = True
        await _end(self.proc)
        self.close_life()
        with contextlib.suppress(Exception):
            await self.pump

    def close_life(self) -> None:
        if self.life is not None and self.owner == os.getpid():
            os.close(self.life)
            self.life = None

    def abandon(self) -> None:
        """End an unclaimed child without waiting for it: its own event loop reaps it, or, that loop
        being closed, we do here. A forked copy of the parent leaves it to the parent."""
        if self.owner != os.getpid() or self.proc.returncode is not None or self._abandoned:
            return
        self._abandoned = True
        if self.loop.is_closed():
            with contextlib.suppress(OSError):
                os.kill(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(self.proc.pid, 0)  # nothing else will reap it now
            self.close_life()
            return
        with contextlib.suppress(OSError):
            os.kill(self.proc.pid, signal.SIGTERM)
        # Closing our end also tells an unclaimed child to go; it has no Helm work to cancel.
        self.close_life()


async def _end(proc: asyncio.subprocess.Process) -> None:
    """End a child cleanly: SIGTERM lets Helm cancel and record the failure; SIGKILL if it lingers."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), _GRACE_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
