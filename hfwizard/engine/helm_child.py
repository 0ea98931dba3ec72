"""Helm's child process: `python -m hfwizard.engine.helm_child`, one Helm operation through the Go SDK.

Started by `hfwizard.engine.helm_embedded` (the parent side). It loads Helm, reads one JSON request on
stdin, runs it, and writes one JSON answer to its stdout; Helm's and client-go's log lines go to
stderr, which the parent turns into log events.

Ending, in every case, without a lock in the way:
- SIGTERM (the parent cancelling, or the kernel's parent-death signal) runs no Python code of ours in
  the signal's path: the C-level handler writes the signal number to a pipe (`signal.set_wakeup_fd`,
  async-signal-safe) and the Python handler does nothing. A canceller thread blocked on that pipe
  cancels Helm's context (so Helm records the release as failed, not pending) and, should Helm not
  finish within its grace, ends the process with `os._exit`, which takes no lock and runs no handler.
- The parent's death is seen three ways: PR_SET_PDEATHSIG (Linux), the parent's pid changing, and
  EOF on the life pipe (`--life-fd`, whose write end only the parent holds): a watchdog thread
  blocked on it wakes when the parent is gone, however it went, and takes the same cancel path.
- Before its request (a warm child), SIGTERM keeps its default action and the watchdog exits at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hfwizard.engine.helm import PENDING_STATUSES

GRACE_S = 5.0  # after a cancel, how long Helm gets to record it before the child ends regardless
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_ORPHAN_EXIT = 3


def _die_with_parent(parent: int | None) -> None:
    """Ask the kernel for SIGTERM when the parent dies; exit at once if it already has.

    The death signal is tied to the parent *thread* that started us; asyncio starts children from its
    loop's thread, which outlives every call awaited on that loop. Where there is no prctl (not
    Linux), the life pipe and the parent check in the wait loop notice the death instead.
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


class _Ending:
    """The one way a running child ends early: a byte on a pipe, acted on by a thread of its own."""

    def __init__(self, parent: int | None) -> None:
        self.parent = parent
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)  # set_wakeup_fd needs it; a full pipe already says "end"
        self.working = False  # set once the request is read: from then on a cancel goes through Helm
        self.cancelled = False

    def orphaned(self) -> bool:
        return self.parent is not None and os.getppid() != self.parent

    def request(self) -> None:
        """Called from the watchdog or the wait loop: end now (before a request) or cancel Helm."""
        if not self.working:
            os._exit(_ORPHAN_EXIT)
        with contextlib.suppress(OSError):
            os.write(self.write_fd, b"e")

    def watch_parent(self, life_fd: int | None) -> None:
        """A daemon thread: EOF on the life pipe means the parent is gone (its write end closed)."""
        if life_fd is None:
            return

        def watchdog() -> None:
            with contextlib.suppress(OSError):
                while os.read(life_fd, 64):
                    pass  # the parent never writes; anything read is ignored
            self.request()

        threading.Thread(target=watchdog, name="parent-watchdog", daemon=True).start()

    def arm(self, context: Any) -> None:
        """From now on SIGTERM cancels Helm's context: through the pipe, never in the handler."""
        self.working = True
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, lambda *_: None)  # the C handler has written to the pipe already

        def canceller() -> None:
            os.read(self.read_fd, 1)
            self.cancelled = True
            if self.orphaned():
                # Nobody reads our pipes any more: a log line written to them while Helm records the
                # failure would raise EPIPE in Go or Python; the log has no reader, so drop it.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
            context.cancel()
            threading.Event().wait(GRACE_S)  # a private event: no lock anyone else could hold
            os._exit(_ORPHAN_EXIT)  # Helm did not finish recording the cancel in time: end regardless

        threading.Thread(target=canceller, name="canceller", daemon=True).start()


def _load_helm() -> Any:
    import logging

    import helm_python as helm

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("helm %(levelname)s %(message)s"))
    native_logger = logging.getLogger("helm_python.native")
    native_logger.addHandler(handler)
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
    ending.watch_parent(_int_arg(argv, "--life-fd"))
    # Keep the JSON answer channel private: anything Go prints to fd 1 goes to stderr (the log).
    answer_fd = os.dup(1)
    os.dup2(2, 1)
    answer = os.fdopen(answer_fd, "w")
    # Load Helm before reading the request: a child started ahead of its call (a warm child) does
    # this while the parent is busy elsewhere, and then waits here for its request.
    helm = _load_helm()
    raw = sys.stdin.read()
    if not raw.strip():
        return 0  # a warm child no call claimed: its stdin was closed without a request
    request = json.loads(raw)
    context = helm.HelmContext()
    ending.arm(context)
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=_work, args=(helm, context, request, outcome), name="helm", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
        if ending.orphaned():  # where no death signal is sent (not Linux) and no life pipe was given
            ending.request()
    if ending.orphaned():
        return _ORPHAN_EXIT  # the answer has no reader
    if "error" in outcome:
        json.dump({"ok": False, "error": outcome["error"], "kind": outcome.get("kind")}, answer)
    else:
        json.dump({"ok": True, "result": outcome.get("result")}, answer)
    answer.flush()
    return 0


def _work(helm: Any, context: Any, request: Mapping[str, Any], outcome: dict[str, Any]) -> None:
    try:
        outcome["result"] = _run(helm, context, request)
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


def _run(helm: Any, context: Any, request: Mapping[str, Any]) -> Any:
    op = request["op"]
    namespace = request.get("namespace")
    timeout = int(request.get("timeout_s") or 600)
    wait = "watcher" if request.get("wait", True) else "hookOnly"
    if op == "render":
        ref, extra = _chart_args(request)
        if Path(ref).exists():
            chart = helm.Chart.load(ref)
        else:  # fetch remote charts (oci://, repository) through `show`-style pull into a temp dir
            import tempfile

            target = tempfile.mkdtemp(prefix="hfwizard-chart-")
            helm.pull(
                ref,
                destination=target,
                untar=True,
                repo_url=extra.get("chart_repo_url"),
                version=extra.get("chart_version"),
            )
            chart = helm.Chart.load(next(Path(target).iterdir()))
        return chart.render(
            request.get("values") or {}, name=request["release"], namespace=namespace, is_install=True
        )
    with _config(helm, request, namespace) as cfg:
        if op == "install_or_upgrade":
            ref, extra = _chart_args(request)
            existing = _last(cfg, request["release"])
            if existing is None or existing.get("status") == "uninstalled":
                result = cfg.install(
                    ref,
                    request["release"],
                    request.get("values") or {},
                    context=context,
                    namespace=namespace,
                    timeout=timeout,
                    wait=wait,
                    create_namespace=bool(request.get("create_namespace")),
                    rollback_on_failure=bool(request.get("atomic")),
                    **extra,
                )
            else:
                result = cfg.upgrade(
                    ref,
                    request["release"],
                    request.get("values") or {},
                    context=context,
                    namespace=namespace,
                    timeout=timeout,
                    wait=wait,
                    max_history=10,
                    rollback_on_failure=bool(request.get("atomic")),
                    **extra,
                )
            return _strip(result)
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
            return _recover(cfg, request["release"])
    raise ValueError(f"unknown operation {op!r}")


def _last(cfg: Any, release: str) -> dict[str, Any] | None:
    import helm_python as helm

    try:
        rows = cfg.history(release)
    except helm.HelmNotFoundError:
        return None
    return max(rows, key=lambda r: int(r.get("revision") or 0)) if rows else None


def _recover(cfg: Any, release: str) -> Any:
    rows = sorted(cfg.history(release), key=lambda r: int(r.get("revision") or 0))
    if not rows:
        return None
    last = rows[-1]
    if last.get("status") not in PENDING_STATUSES:
        return _strip(last)
    deployed = [r for r in rows[:-1] if r.get("status") in ("deployed", "superseded")]
    if deployed:
        target = int(deployed[-1]["revision"])
        print(
            f"recovering {release}: revision {last.get('revision')} is {last.get('status')}; "
            f"rolling back to revision {target}",
            file=sys.stderr,
            flush=True,
        )
        cfg.rollback(release, version=target, timeout=300, wait="watcher")
        return _strip(cfg.status(release))
    print(
        f"recovering {release}: first install left {last.get('status')}; removing the release",
        file=sys.stderr,
        flush=True,
    )
    cfg.uninstall(release, timeout=300, wait="hookOnly")
    return None


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # Straight out, without the interpreter's shutdown: Go's threads and ours hold nothing to wait for.
    os._exit(code)
