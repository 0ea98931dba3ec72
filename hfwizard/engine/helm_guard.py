"""The Helm guard: no run starts Helm while a Helm child of an earlier, killed run still works.

A SIGKILLed installer's Helm child outlives it by up to its grace (engine/helm_child.py): it cancels its
calls and Helm records each cancelled release as failed, then it exits. A `resume` started meanwhile
could read a release as it was, decide, and then see that record land on top of its own work. So every
Helm child holds a shared flock on the install's `helm.guard` from its first instruction to its exit
(the kernel lets go however it ends), and the engine, holding the install lock, waits until it can take
the guard exclusively before its own Helm child starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

GUARD_ENV = "HFWIZARD_HELM_GUARD"  # the guard's path, given to each Helm child in its environment


def hold_shared(path: str) -> int | None:
    """In a Helm child: take the guard shared and keep it (the fd stays open until the process ends)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None  # no state dir to guard (a probe, a test's own client)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def busy(path: Path) -> bool:
    """Whether some Helm child holds the guard now."""
    return not wait_free(path, 0.0)


def wait_free(path: Path, timeout: float) -> bool:
    """Wait until no Helm child holds the guard (True), or `timeout` seconds (False)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return True
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
                continue
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            return True
    finally:
        os.close(fd)


__all__ = ["GUARD_ENV", "busy", "hold_shared", "wait_free"]
