"""Leaving the process without the interpreter's teardown, for commands that hold nothing when done."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from typing import NoReturn

_armed = False


def arm() -> None:
    """Say the running command leaves nothing behind that needs the interpreter's teardown.

    The preflight imports the Kubernetes client, boto3, psycopg and the Helm binding; tearing their
    modules down takes 0.2-0.3 s after the last line is printed, and a check's SDK call that outlived
    its timeout would hold the exit until its own socket gives up.
    """
    global _armed
    _armed = True


def leave(code: int) -> NoReturn:
    """Exit with `code`: at once (atexit handlers, logs and output flushed) when armed, else normally."""
    if not _armed:
        sys.exit(code)
    # atexit handlers still run: temporary folders, logging; module teardown and thread joins do not.
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can reach the reader
            stream.flush()
    os._exit(code)
