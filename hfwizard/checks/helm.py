"""Helm check: the embedded Helm engine loads, or the operator's `helm` is on PATH and 3.8 or newer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sys
import time

from hfwizard import requirements
from hfwizard.checks.base import Check, CheckResult, Status, result

MIN_CLI = requirements.HELM_CLI.tuple
CHECK_ID = "helm/engine"

# The engine runs Helm's Go library in a child process (hfwizard.engine.helm_embedded); the check
# loads it the same way, so a broken native library fails here and never in the wizard's process.
_PROBE = ("import hfwizard.engine.helm_embedded, helm_python; "
          "print(helm_python.helm_sdk_version(), helm_python.__version__)")


async def _run(args: list[str], timeout: float) -> tuple[int | None, str, str]:
    """Run a command; (exit code or None on timeout, stdout, stderr). The child dies with the check."""
    proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return None, "", ""
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def check_embedded(timeout: float, title: str = "Helm engine") -> CheckResult:
    started = time.monotonic()
    code, out, err = await _run([sys.executable, "-c", _PROBE], timeout)
    if code is None:
        return result(CHECK_ID, title, Status.FAIL,
                      f"the embedded Helm library did not load within {timeout:g} s",
                      "run again; if it persists, reinstall hfwizard "
                      "(pip install --force-reinstall hfwizard)",
                      started)
    if code != 0:
        last = (err.strip().splitlines() or ["no output"])[-1][:200]
        return result(CHECK_ID, title, Status.FAIL, f"the embedded Helm library does not load: {last}",
                      "reinstall hfwizard with its dependencies, or set install.helm: cli "
                      "to use your own helm",
                      started)
    helm_version, _, binding = out.strip().partition(" ")
    return result(CHECK_ID, title, Status.PASS,
                  f"embedded Helm {helm_version} loads (helm-python-sdk {binding}); "
                  "no helm binary needed", None, started, helm=helm_version)


def parse_helm_version(text: str) -> tuple[int, int, int] | None:
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


async def check_cli(binary: str, timeout: float, title: str = "Helm engine") -> CheckResult:
    started = time.monotonic()
    path = binary if os.sep in binary else shutil.which(binary)
    if not path or not os.access(path, os.X_OK):
        return result(CHECK_ID, title, Status.FAIL, f"install.helm is cli but {binary!r} is not on PATH",
                      "install Helm 3.8 or newer (https://helm.sh/docs/intro/install/), set "
                      "install.helmBinary, or use install.helm: embedded", started)
    code, out, err = await _run([path, "version", "--short"], timeout)
    if code is None:
        return result(CHECK_ID, title, Status.FAIL, f"`{path} version` did not finish within {timeout:g} s",
                      "check that the binary is Helm and runs on this machine", started)
    version = parse_helm_version(out)
    if code != 0 or version is None:
        shown = (err.strip() or out.strip() or "no output").splitlines()[0][:160]
        return result(CHECK_ID, title, Status.FAIL, f"`{path} version` failed: {shown}",
                      "check install.helmBinary points at Helm", started)
    text = ".".join(map(str, version))
    if version[:2] < MIN_CLI:
        return result(CHECK_ID, title, Status.FAIL, f"{path} is Helm {text}; hfwizard needs 3.8 or newer",
                      "upgrade Helm, or use install.helm: embedded", started, helm=text)
    return result(CHECK_ID, title, Status.PASS, f"{path} is Helm {text}", None, started, helm=text)


def helm_check(backend: str, binary: str = "helm", timeout: float = 10.0) -> Check:
    async def run() -> CheckResult:
        if backend == "cli":
            return await check_cli(binary, timeout * 0.9)
        return await check_embedded(timeout * 0.9)

    return Check(CHECK_ID, "Helm engine", run, timeout)
