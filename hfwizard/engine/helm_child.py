"""Helm's child process: `python -m hfwizard.engine.helm_child`, Helm operations through the Go SDK.

Started by `hfwizard.engine.helm_embedded` (the parent side). It loads Helm, then reads calls on
stdin and runs each in a thread of its own, so one child serves several calls at once (the Go SDK is
called through ctypes, which lets go of the GIL while Go works). Both ways, one JSON object a line;
values travel there (they may hold secrets), never in argv or the environment:

  parent -> child (stdin)   {"id": "7", "op": "install_or_upgrade", ...}   a call
                            {"cancel": "7"}                                cancel that call's Helm context
  child -> parent (a private duplicate of fd 1; fd 1 itself points at fd 2)
                            {"id": "7", "ok": true, "result": ...}         the answer to call 7
                            {"id": "7", "ok": false, "error": ..., "kind": ...}
                            {"log": "helm DEBUG ...", "id": "7"}           a log record tied to call 7
                            {"log": "helm DEBUG ..."}                      one that names no call (`_Router`)

EOF on stdin means no more calls: the child ends once those in flight have answered. Whatever Go
writes to fd 1 or 2 itself (klog, a panic) reaches the parent on stderr.

Ending, in every case, without a lock in the way:
- SIGTERM (the parent ending us, or the kernel's parent-death signal) runs no Python code of ours in
  the signal's path: the C-level handler writes the signal number to a pipe (`signal.set_wakeup_fd`,
  async-signal-safe) and the Python handler does nothing. A canceller thread blocked on that pipe
  cancels the Helm context of every call in flight (so Helm records those releases as failed, not
  pending), waits for them to answer, and, should they not within the grace, ends the process with
  `os._exit`, which takes no lock and runs no handler.
- The parent's death is seen three ways: PR_SET_PDEATHSIG (Linux), the parent's pid changing, and
  EOF on the life pipe (`--life-fd`, whose write end only the parent holds): a watchdog thread
  blocked on it wakes when the parent is gone, however it went, and takes the same cancel path.
- Before its first call (a warm child), SIGTERM keeps its default action and the watchdog exits at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hfwizard.engine.helm import PENDING_STATUSES
from hfwizard.engine.helm_guard import GUARD_ENV, hold_shared

GRACE_S = 5.0  # after a cancel, how long Helm gets to record it before the child ends regardless
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_ORPHAN_EXIT = 3


def _die_with_parent(parent: int | None) -> None:
    """Ask the kernel for SIGTERM when the parent dies; exit at once if it already has.

    The death signal is tied to the parent *thread* that started us; the parent starts the child
    from its event loop's thread, which outlives every call. Where there is no prctl (not Linux), the
    life pipe and the parent check of the watchdog notice the death instead.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    # The parent may have died between starting us and the prctl: no signal comes for that one.
    if parent is not None and os.getppid() != parent:
        os._exit(_ORPHAN_EXIT)


def _int_arg(argv: list[str], flag: str) -> int | None:
    if flag in argv:
        with contextlib.suppress(IndexError, ValueError):
            return int(argv[argv.index(flag) + 1])
    return None  # started by hand or by a test: no parent to outlive


def _values_of(table: dict[str, Any]) -> list[Any]:
    """A copy of a dict's values that other threads may be changing, without taking a lock."""
    while True:
        try:
            return list(table.values())
        except RuntimeError:  # changed size while copied: try again
            continue


class _Channel:
    """The answer pipe: whole lines, one writer at a time (calls' threads and Go's log threads)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = threading.Lock()

    def send(self, message: Mapping[str, Any]) -> None:
        data = memoryview((json.dumps(message) + "\n").encode())
        with self._lock, contextlib.suppress(OSError):  # no reader any more: nobody to tell
            while data:
                data = data[os.write(self.fd, data):]


_NAME = re.compile(r"(?:^|\s)name=(\S+)")
_NAMESPACE = re.compile(r"(?:^|\s)namespace=(\S*)")  # empty for a cluster-wide object
_RECORD_KEY = re.compile(r"key=sh\.helm\.release\.v1\.(\S+)\.v\d+|(?:^|\s)release=(\S+)")


class _Router:
    """Ties each of Helm's log records to the call it belongs to, where that can be told for sure.

    Helm's log callback runs on whichever Go thread logs: only a few records (reading the history,
    creating the release record) come on the thread that made the call. The others are tied by what
    they name: a release (`name=<release>` with no namespace, `release=<release>`,
    `key=sh.helm.release.v1.<release>.v<n>`)
    or an object of a call's rendered manifest (`namespace=<ns> name=<object>`: an object belongs to
    one release). A record that names nothing known (`waiting for resources count=8`) goes untied.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[int, str] = {}
        self._releases: dict[tuple[str, str], str] = {}
        self._objects: dict[tuple[str, str], str] = {}

    def add(self, call_id: str, thread: int, release: str | None, namespace: str) -> None:
        with self._lock:
            self._threads[thread] = call_id
            if release:
                self._releases[(namespace, release)] = call_id

    def add_objects(self, call_id: str, objects: list[tuple[str, str]]) -> None:
        with self._lock:
            self._objects.update(dict.fromkeys(objects, call_id))

    def remove(self, call_id: str) -> None:
        with self._lock:
            _drop(self._threads, call_id)
            _drop(self._releases, call_id)
            _drop(self._objects, call_id)

    def route(self, thread: int, message: str) -> str | None:
        with self._lock:
            if thread in self._threads:
                return self._threads[thread]
            name, namespace = _NAME.search(message), _NAMESPACE.search(message)
            if name and namespace:
                if namespace.group(1):
                    return self._objects.get((namespace.group(1), name.group(1)))
                # A cluster-wide object (a rendered manifest does not say which kinds are): by name.
                owners = {v for (_, n), v in self._objects.items() if n == name.group(1)}
                return owners.pop() if len(owners) == 1 else None
            key = _RECORD_KEY.search(message)
            release = (key.group(1) or key.group(2)) if key else (name.group(1) if name else None)
            owners = {v for (_, r), v in self._releases.items() if r == release}
            return owners.pop() if len(owners) == 1 else None  # the same name in two namespaces: untied


def _drop[K](table: dict[K, str], call_id: str) -> None:
    for key in [k for k, v in table.items() if v == call_id]:
        del table[key]


class _RecordHandler(logging.Handler):
    """Sends each of Helm's log records to the parent, tied to its call where `_Router` can tell."""

    def __init__(self, channel: _Channel, router: _Router) -> None:
        super().__init__()
        self.channel, self.router = channel, router

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            call_id = self.router.route(threading.get_ident(), text)
            self.channel.send({"log": f"helm {record.levelname} {text}", "id": call_id})
        except Exception:  # a log record must never break Helm's call (this runs inside a C callback)
            pass


class _Server:
    """The calls in flight, each in a thread of its own with its own Helm context, answered by id."""

    def __init__(self, helm: Any, channel: _Channel, router: _Router) -> None:
        self.helm, self.channel, self.router = helm, channel, router
        self.contexts: dict[str, Any] = {}
        self.threads: dict[str, threading.Thread] = {}
        self.closing = False  # set once the child is ending: calls that arrive now are refused

    def in_flight(self) -> int:
        return len(self.threads)

    def start(self, request: dict[str, Any]) -> None:
        call_id = str(request.get("id"))
        if self.closing:
            self.channel.send({"id": call_id, "ok": False, "kind": "cancelled",
                               "error": "cancelled: Helm's child process is ending"})
            return
        context = self.helm.HelmContext()
        thread = threading.Thread(target=self._serve, args=(call_id, context, request),
                                  name=f"helm-{call_id}", daemon=True)
        self.contexts[call_id], self.threads[call_id] = context, thread
        thread.start()

    def cancel(self, call_id: str) -> None:
        context = self.contexts.get(call_id)
        if context is not None:
            with contextlib.suppress(Exception):  # it may have finished (and been freed) meanwhile
                context.cancel()

    def cancel_all(self) -> None:
        self.closing = True
        for context in _values_of(self.contexts):
            with contextlib.suppress(Exception):
                context.cancel()

    def _serve(self, call_id: str, context: Any, request: Mapping[str, Any]) -> None:
        self.router.add(call_id, threading.get_ident(), request.get("release"), request.get("namespace") or "default")
        outcome: dict[str, Any] = {}
        try:
            _work(self.helm, context, request, outcome, _Tools(self, call_id))
        finally:
            self.router.remove(call_id)
        if "error" in outcome:
            self.channel.send({"id": call_id, "ok": False, "error": outcome["error"], "kind": outcome.get("kind")})
        else:
            self.channel.send({"id": call_id, "ok": True, "result": outcome.get("result")})
        # Only once answered does the call stop counting as in flight: the canceller waits for that.
        self.contexts.pop(call_id, None)
        self.threads.pop(call_id, None)
        context.close()


class _Tools:
    """What a call's code needs of the server: to say a line in its own log, to name its objects."""

    def __init__(self, server: _Server, call_id: str) -> None:
        self.server, self.call_id = server, call_id

    def say(self, line: str) -> None:
        self.server.channel.send({"log": line, "id": self.call_id})

    def objects(self, objects: list[tuple[str, str]]) -> None:
        self.server.router.add_objects(self.call_id, objects)


class _Ending:
    """The one way a running child ends early: a byte on a pipe, acted on by a thread of its own."""

    def __init__(self, parent: int | None) -> None:
        self.parent = parent
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)  # set_wakeup_fd needs it; a full pipe already says "end"
        self.working = False  # set once the first call is read: from then on an end goes through Helm
        self.cancelled = False

    def orphaned(self) -> bool:
        return self.parent is not None and os.getppid() != self.parent

    def request(self) -> None:
        """Called from the watchdog or the wait loop: end now (before a call) or cancel Helm's calls."""
        if not self.working:
            os._exit(_ORPHAN_EXIT)
        with contextlib.suppress(OSError):
            os.write(self.write_fd, b"e")

    def watch_parent(self, life_fd: int | None) -> None:
        """A daemon thread: EOF on the life pipe means the parent is gone (its write end closed);
        without a life pipe, the parent's pid is checked every 0.2 s instead."""

        def watchdog() -> None:
            if life_fd is not None:
                with contextlib.suppress(OSError):
                    while os.read(life_fd, 64):
                        pass  # the parent never writes; anything read is ignored
            else:
                pause = threading.Event()  # a private event: no lock anyone else could hold
                while not self.orphaned():
                    pause.wait(0.2)
            self.request()

        if life_fd is not None or self.parent is not None:
            threading.Thread(target=watchdog, name="parent-watchdog", daemon=True).start()

    def arm(self, server: _Server, answer_fd: int) -> None:
        """From now on SIGTERM cancels every call's Helm context: through the pipe, never in the handler."""
        self.working = True
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, lambda *_: None)  # the C handler has written to the pipe already

        def canceller() -> None:
            os.read(self.read_fd, 1)
            self.cancelled = True
            if self.orphaned():
                # Nobody reads our pipes any more: a line written to them while Helm records the
                # failures would raise EPIPE in Go or Python; the log has no reader, so drop it.
                devnull = os.open(os.devnull, os.O_WRONLY)
                for fd in (1, 2, answer_fd):
                    os.dup2(devnull, fd)
            server.cancel_all()
            pause = threading.Event()  # a private event: no lock anyone else could hold
            for _ in range(int(GRACE_S / 0.05)):
                if not server.in_flight():
                    break  # every call has answered (cancelled): nothing left to wait for
                pause.wait(0.05)
            os._exit(_ORPHAN_EXIT)  # without the interpreter's shutdown, which could wait on a lock

        threading.Thread(target=canceller, name="canceller", daemon=True).start()


def _load_helm(channel: _Channel, router: _Router) -> Any:
    import helm_python as helm

    native_logger = logging.getLogger("helm_python.native")
    native_logger.addHandler(_RecordHandler(channel, router))
    # Helm logs its wait progress ("waiting for resources...") at debug level.
    level = logging.DEBUG if os.environ.get("HFWIZARD_HELM_DEBUG", "1") == "1" else logging.INFO
    native_logger.setLevel(level)
    native_logger.propagate = False
    helm.enable_logging(level)
    return helm


def main() -> int:
    argv = sys.argv[1:]
    ending = _Ending(_int_arg(argv, "--parent"))
    _die_with_parent(ending.parent)
    guard = os.environ.get(GUARD_ENV)
    if guard:
        hold_shared(guard)  # until this process ends, however: see engine/helm_guard.py
    ending.watch_parent(_int_arg(argv, "--life-fd"))
    # Keep the answer channel private: anything Go prints to fd 1 goes to stderr (the log).
    answer_fd = os.dup(1)
    os.dup2(2, 1)
    channel, router = _Channel(answer_fd), _Router()
    # Load Helm before reading a call: a child started ahead of its first call (a warm child) does
    # this while the parent is busy elsewhere, and then waits here.
    server = _Server(_load_helm(channel, router), channel, router)
    for raw in sys.stdin.buffer:
        try:
            message = json.loads(raw)
        except ValueError:
            print("helm child: ignored a line that is not JSON", file=sys.stderr, flush=True)
            continue
        if "cancel" in message:
            server.cancel(str(message["cancel"]))
            continue
        if not ending.working:
            ending.arm(server, answer_fd)
        server.start(message)
    # No more calls: end once those in flight have answered.
    pause = threading.Event()
    while server.in_flight():
        pause.wait(0.2)
        if ending.orphaned():  # where no death signal is sent (not Linux) and no life pipe was given
            ending.request()
    return _ORPHAN_EXIT if ending.orphaned() else 0


def _work(helm: Any, context: Any, request: Mapping[str, Any], outcome: dict[str, Any], tools: _Tools) -> None:
    try:
        outcome["result"] = _run(helm, context, request, tools)
    except helm.HelmCancelledError as exc:
        outcome["error"], outcome["kind"] = str(exc), "cancelled"
    except helm.HelmNotFoundError as exc:
        outcome["error"], outcome["kind"] = str(exc), "not_found"
    except helm.HelmError as exc:
        outcome["error"], outcome["kind"] = str(exc), type(exc).__name__
    except Exception as exc:  # the parent must get an answer, whatever broke
        outcome["error"], outcome["kind"] = f"{type(exc).__name__}: {exc}", "internal"


def _config(helm: Any, request: Mapping[str, Any], namespace: str | None) -> Any:
    return helm.Config(
        kubeconfig_path=request.get("kubeconfig"),
        kube_context=request.get("context"),
        namespace=namespace or "default",
    )


def _chart_args(request: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    chart = request["chart"]
    extra: dict[str, Any] = {}
    if chart.get("repo_url"):
        extra["chart_repo_url"] = chart["repo_url"]
    if request.get("version"):
        extra["chart_version"] = request["version"]
    return chart["ref"], extra


def _strip(summary: Any) -> Any:
    # Manifests are large and may carry rendered Secrets: they never cross to the parent or a log.
    if isinstance(summary, dict):
        return {k: v for k, v in summary.items() if k not in ("manifest", "config", "hooks")}
    return summary


def _render(helm: Any, request: Mapping[str, Any]) -> Any:
    ref, extra = _chart_args(request)
    if Path(ref).exists():
        chart = helm.Chart.load(ref)
    else:  # fetch remote charts (oci://, repository) through `show`-style pull into a temp dir
        import shutil
        import tempfile

        target = tempfile.mkdtemp(prefix="hfwizard-chart-")
        try:
            helm.pull(ref, destination=target, untar=True, repo_url=extra.get("chart_repo_url"),
                      version=extra.get("chart_version"))
            chart = helm.Chart.load(next(Path(target).iterdir()))
        finally:
            shutil.rmtree(target, ignore_errors=True)  # a long-lived child must not pile up temp dirs
    with chart:
        return chart.render(request.get("values") or {}, name=request["release"],
                            namespace=request.get("namespace"), is_install=True)


def _object_names(chart: Any, request: Mapping[str, Any], installing: bool) -> list[tuple[str, str]]:
    """(namespace, name) of each object the call will apply, rendered offline, for `_Router`. An
    object whose name depends on the cluster (`lookup`) is missed: its log lines go untied."""
    from hfwizard.engine.workloads import parse_manifest

    namespace = request.get("namespace") or "default"
    try:
        rendered = chart.render(request.get("values") or {}, name=request["release"], namespace=namespace,
                                is_install=installing, is_upgrade=not installing)
    except Exception:
        return []  # Helm's own call will say what is wrong with the chart
    names: list[tuple[str, str]] = []
    for path, text in rendered.items():
        if path.endswith((".yaml", ".yml", ".json")):
            with contextlib.suppress(Exception):
                names.extend((o.namespace, o.name) for o in parse_manifest(text, namespace))
    return names


def _install_or_upgrade(helm: Any, cfg: Any, context: Any, request: Mapping[str, Any], tools: _Tools) -> Any:
    ref, extra = _chart_args(request)
    release, namespace = request["release"], request.get("namespace")
    timeout = int(request.get("timeout_s") or 600)
    wait = "watcher" if request.get("wait", True) else "hookOnly"
    existing = _last(cfg, release)
    installing = existing is None or existing.get("status") == "uninstalled"
    chart: Any = ref
    if "chart_repo_url" not in extra and Path(ref).exists():
        chart = helm.Chart.load(ref)  # loaded once: rendered for its objects' names, then applied
        tools.objects(_object_names(chart, request, installing))
    common = {"context": context, "namespace": namespace, "timeout": timeout, "wait": wait,
              "rollback_on_failure": bool(request.get("atomic")), **extra}
    try:
        if installing:
            result = cfg.install(chart, release, request.get("values") or {},
                                 create_namespace=bool(request.get("create_namespace")), **common)
        else:
            result = cfg.upgrade(chart, release, request.get("values") or {}, max_history=10, **common)
    finally:
        if chart is not ref:
            chart.close()
    return _strip(result)


def _run(helm: Any, context: Any, request: Mapping[str, Any], tools: _Tools) -> Any:
    op = request["op"]
    namespace = request.get("namespace")
    timeout = int(request.get("timeout_s") or 600)
    wait = "watcher" if request.get("wait", True) else "hookOnly"
    if op == "render":
        return _render(helm, request)
    with _config(helm, request, namespace) as cfg:
        if op == "install_or_upgrade":
            return _install_or_upgrade(helm, cfg, context, request, tools)
        if op == "status":
            return _strip(cfg.status(request["release"]))
        if op == "objects":
            from hfwizard.engine.workloads import parse_manifest

            manifest = str(cfg.status(request["release"]).get("manifest") or "")
            return [(o.kind, o.name, o.namespace) for o in parse_manifest(manifest, namespace or "default")]
        if op == "history":
            return [_strip(row) for row in cfg.history(request["release"])]
        if op == "list":
            return [
                _strip(row)
                for row in cfg.list(
                    all_states=bool(request.get("all_states")), all_namespaces=namespace is None
                )
            ]
        if op == "rollback":
            cfg.rollback(request["release"], version=request.get("revision"), timeout=timeout, wait=wait)
            return _strip(cfg.status(request["release"]))
        if op == "uninstall":
            return _strip(cfg.uninstall(request["release"], timeout=timeout, wait=wait))
        if op == "recover_pending":
            return _recover(cfg, request["release"], tools.say)
    raise ValueError(f"unknown operation {op!r}")


def _last(cfg: Any, release: str) -> dict[str, Any] | None:
    import helm_python as helm

    try:
        rows = cfg.history(release)
    except helm.HelmNotFoundError:
        return None
    return max(rows, key=lambda r: int(r.get("revision") or 0)) if rows else None


def _recover(cfg: Any, release: str, say: Callable[[str], None]) -> Any:
    rows = sorted(cfg.history(release), key=lambda r: int(r.get("revision") or 0))
    if not rows:
        return None
    last = rows[-1]
    if last.get("status") not in PENDING_STATUSES:
        return _strip(last)
    deployed = [r for r in rows[:-1] if r.get("status") in ("deployed", "superseded")]
    if deployed:
        target = int(deployed[-1]["revision"])
        say(f"recovering {release}: revision {last.get('revision')} is {last.get('status')}; "
            f"rolling back to revision {target}")
        cfg.rollback(release, version=target, timeout=300, wait="watcher")
        return _strip(cfg.status(release))
    say(f"recovering {release}: first install left {last.get('status')}; removing the release")
    cfg.uninstall(release, timeout=300, wait="hookOnly")
    return None


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # Straight out, without the interpreter's shutdown: Go's threads and ours hold nothing to wait for.
    os._exit(code)
