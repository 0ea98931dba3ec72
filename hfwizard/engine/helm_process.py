"""One started Helm child (`hfwizard.engine.helm_child`) and the calls it serves at once, by id.

The parent side of the child's line protocol (described in `helm_child`). Nothing here belongs to an
event loop: a thread of ours starts the child, reads its answers and, at its end, reaps it; a second
thread reads its stderr. Each call's answer and log lines are handed to the loop that made the call
(`call_soon_threadsafe`), so one child serves calls from any loop of the process. Whatever way the
child ends (answered, crashed, SIGKILLed, OOM-killed), its answer pipe reaches EOF, the reader reaps
it and fails every call still in flight with its exit status and the tail of its stderr: a call can
never wait on a child that is gone, and no child is left a zombie.

The reader thread is also the thread that starts the child, and it lives exactly as long as the
child: the child's parent-death signal (PR_SET_PDEATHSIG) is tied to the thread that started it, so
it must not be a thread that ends before the child does (a worker, an `asyncio.run` in a thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hfwizard.engine.helm import HelmError, LogSink

__all__ = ["HelmProcess"]

_DEBUG_RECORD = "helm DEBUG "  # how the child's relay starts a record Helm logged at debug level
GRACE_S = 5.0  # after SIGTERM, how long the child gets to cancel its calls before SIGKILL
_TAIL_LINES = 20


@dataclass
class _Call:
    """A call in flight: where its answer and its log lines go."""

    loop: asyncio.AbstractEventLoop
    answer: asyncio.Future[dict[str, Any]]
    sink: LogSink | None


class HelmProcess:
    """A started child that takes calls (`submit`) until it ends, however it ends."""

    def __init__(self, python: str, env: dict[str, str]) -> None:
        self.env = env
        self.owner = os.getpid()  # a forked copy of our process must not use (or end) our child
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self.exited = threading.Event()  # set once the child is reaped and its calls are failed
        self.returncode: int | None = None
        self.accepting = True  # false once stdin is closed: the child takes no new calls
        self._python = python
        self._calls: dict[str, _Call] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # guards _calls; never held while writing to the child
        self._writing = threading.Lock()  # one writer at a time on the child's stdin
        self._gone: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._life: int | None = None
        started = threading.Event()
        failure: list[BaseException] = []
        self._reader = threading.Thread(target=self._run, args=(started, failure), name="helm-child", daemon=True)
        self._reader.start()
        started.wait()
        if failure:
            raise failure[0]

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def usable(self, env: dict[str, str]) -> bool:
        """Can take a new call from this process with this environment."""
        return self.accepting and self._gone is None and self.owner == os.getpid() and self.env == env

    def in_flight(self) -> int:
        return len(self._calls)

    # ---- calls -------------------------------------------------------------------------------

    def submit(self, request: Mapping[str, Any], sink: LogSink | None) -> tuple[str, asyncio.Future[dict[str, Any]]]:
        """Send a call; the future gets its answer (`{"ok": ..., ...}`) or the error that ended the child."""
        loop = asyncio.get_running_loop()
        call = _Call(loop, loop.create_future(), sink)
        with self._lock:
            call_id = str(next(self._ids))
            if self._gone is not None or not self.accepting:
                call.answer.set_exception(HelmError(self._gone or "Helm's child process takes no more calls"))
                return call_id, call.answer
            self._calls[call_id] = call
        self._send({**request, "id": call_id})
        return call_id, call.answer

    def cancel(self, call_id: str) -> None:
        """Cancel that call's Helm context (install and upgrade have one; others run to their end).
        Its log lines still reach its sink until its answer comes or the caller `forget`s it."""
        if call_id in self._calls:
            self._send({"cancel": call_id})

    def forget(self, call_id: str) -> None:
        """Nobody waits for that call any more: its answer and log lines, if they come, are dropped."""
        with self._lock:
            self._calls.pop(call_id, None)

    def finish(self) -> None:
        """No more calls: the child ends once those in flight have answered."""
        self.accepting = False
        with self._writing:
            if self._proc is not None and self._proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self._proc.stdin.close()

    def _send(self, message: Mapping[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        # Not under `_lock`: a write that blocks (the child slow to read) must not stop the reader
        # thread handing out answers, or the child, blocked writing them, would never read on.
        with self._writing:
            try:
                self._proc.stdin.write((json.dumps(message) + "\n").encode())
                self._proc.stdin.flush()
            except (OSError, ValueError):
                pass  # the child is gone: its answer pipe's EOF fails the calls, with its exit status

    # ---- ending ------------------------------------------------------------------------------

    def signal(self, signum: int) -> None:
        if self.owner == os.getpid() and self._proc is not None and not self.exited.is_set():
            with contextlib.suppress(OSError):
                self._proc.send_signal(signum)

    async def end(self, grace_s: float = GRACE_S) -> None:
        """End the child and wait until it is reaped: SIGTERM cancels every call in flight (Helm records
        those releases as failed) and ends it; SIGKILL if it lingers past the grace."""
        if self.owner != os.getpid():
            return
        self.finish()
        self.signal(signal.SIGTERM)
        if not await asyncio.to_thread(self.exited.wait, grace_s + 1.0):
            self.signal(signal.SIGKILL)
            await asyncio.to_thread(self.exited.wait, 10.0)

    def abandon(self) -> None:
        """End the child without waiting; the reader thread reaps it."""
        if self.owner == os.getpid():
            self.finish()
            self.signal(signal.SIGTERM)

    # ---- the reader thread -------------------------------------------------------------------

    def _start(self) -> subprocess.Popen[bytes]:
        # The life pipe: only we hold its write end, so the child reads EOF the moment we are gone,
        # however we went (its watchdog thread then ends it). Not inherited by anything else we start.
        life_read, life_write = os.pipe()
        try:
            proc = subprocess.Popen(
                [self._python, "-m", "hfwizard.engine.helm_child",
                 "--parent", str(os.getpid()),  # lets the child tell that we died before its prctl
                 "--life-fd", str(life_read)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=self.env,
                start_new_session=True,  # a Ctrl-C on the terminal reaches us, not Helm directly
                pass_fds=(life_read,),
            )
        except BaseException:
            os.close(life_write)
            raise
        finally:
            os.close(life_read)
        self._life = life_write
        return proc

    def _run(self, started: threading.Event, failure: list[BaseException]) -> None:
        try:
            self._proc = proc = self._start()
        except BaseException as exc:
            failure.append(exc)
            self._gone = f"Helm's child process could not start: {exc}"
            self.exited.set()
            return
        finally:
            started.set()
        assert proc.stdout is not None and proc.stderr is not None
        errors = threading.Thread(target=self._pump_stderr, args=(proc.stderr,), name="helm-child-stderr", daemon=True)
        errors.start()
        for raw in proc.stdout:
            self._dispatch(raw)
        # EOF: the child has ended or is ending. Reap it (no zombie), then fail what it left unanswered.
        try:
            code = proc.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        errors.join(2.0)  # its last stderr lines explain the end
        self.returncode = code
        if self._life is not None:
            os.close(self._life)
            self._life = None
        self._fail_all(code)
        self.exited.set()

    def _fail_all(self, code: int) -> None:
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        tail = " | ".join(self.tail) or "no output"
        with self._lock:
            self._gone = f"Helm's child process (pid {self.pid}) {how} before it answered: {tail}"
            calls, self._calls = list(self._calls.values()), {}
        self.finish()
        for call in calls:
            _hand(call.loop, _fail, call.answer, HelmError(self._gone))

    def _dispatch(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            self._untied(raw.decode("utf-8", "replace").rstrip())
            return
        call_id = message.get("id")
        if "log" in message:
            call = self._calls.get(str(call_id)) if call_id is not None else None
            if call_id is None:
                self._untied(str(message["log"]))
            elif call is None:
                pass  # a line of a call nobody waits for any more: it is no other call's
            elif call.sink is not None:
                _hand(call.loop, call.sink, str(message["log"]))
            return
        with self._lock:
            call = self._calls.pop(str(call_id), None)
        if call is not None:
            _hand(call.loop, _settle, call.answer, message)

    def _pump_stderr(self, stream: Any) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.tail.append(line)
                self._untied(line)

    def _untied(self, line: str) -> None:
        """A line no call can be named for (Go's own output, a record naming nothing known): the one
        call in flight gets it as is; with several, each gets it marked as not tied to it, except Helm's
        debug records (`waiting for resources count=8`), which are dropped then: with eight calls in
        flight, copies of them were 2/3 of a rehearsal's log lines, each said to eight steps it might not
        belong to. (The tail kept for a dead child's message holds its stderr, not these.)"""
        calls = list(self._calls.values())
        if len(calls) == 1:
            if calls[0].sink is not None:
                _hand(calls[0].loop, calls[0].sink, line)
            return
        if line.startswith(_DEBUG_RECORD):
            return
        for call in calls:
            if call.sink is not None:
                _hand(call.loop, call.sink, f"{line} [not tied to one call: {len(calls)} Helm calls in flight]")


def _hand(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
    """Run `fn(*args)` on the loop that made the call; a closed loop has nobody left to tell."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


def _settle(answer: asyncio.Future[dict[str, Any]], message: dict[str, Any]) -> None:
    if not answer.done():
        answer.set_result(message)


def _fail(answer: asyncio.Future[dict[str, Any]], error: BaseException) -> None:
    if not answer.done():
        answer.set_exception(error)
