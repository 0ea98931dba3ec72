"""A Helm backend driving the operator's own `helm` binary (3.8 or newer), same protocol as the embedded one.

Values go to helm on stdin (`--values -`), never in argv (visible in `ps`) or a file; stderr lines
become log lines and typed errors; a cancelled call terminates helm (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from hfwizard.engine.helm import (
    ChartLike,
    ChartRef,
    HelmError,
    LogSink,
    ReleaseInfo,
    ReleaseNotFound,
    error_from_text,
)
from hfwizard.errors import BadInput

MIN_VERSION = (3, 8)
_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int]:
    """`helm version --short` output ("v3.14.2+gc309b6f") as (3, 14, 2)."""
    m = _VERSION.search(text.strip())
    if not m:
        raise BadInput(f"cannot read helm's version from {text.strip()[:80]!r}",
                       remedy="check that install.helmBinary points at Helm 3.8 or newer")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def check_version(text: str) -> tuple[int, int, int]:
    v = parse_version(text)
    if v[:2] < MIN_VERSION:
        raise BadInput(f"helm {v[0]}.{v[1]}.{v[2]} is too old: hfwizard needs Helm 3.8 or newer",
                       remedy="upgrade helm, or set install.helm: embedded (no binary needed)")
    return v


class HelmCli:
    """`helm` as a child process per call; fits `hfwizard.engine.helm.HelmBackend`."""

    def __init__(self, binary: str = "helm", *, kubeconfig: str | None = None, context: str | None = None) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.context = context
        self._checked: tuple[int, int, int] | None = None

    # ---- argument building (pure: unit-tested) ---------------------------------------------------

    def global_args(self, namespace: str | None) -> list[str]:
        out: list[str] = []
        if self.kubeconfig:
            out += ["--kubeconfig", self.kubeconfig]
        if self.context:
            out += ["--kube-context", self.context]
        if namespace:
            out += ["--namespace", namespace]
        return out

    def upgrade_args(self, release: str, chart: ChartRef, namespace: str, *, version: str | None, wait: bool,
                     timeout_s: float, create_namespace: bool, atomic: bool) -> list[str]:
        args = ["upgrade", "--install", release, chart.ref, "--values", "-", "--output", "json",
                "--timeout", f"{max(1, int(timeout_s))}s", "--history-max", "10"]
        if chart.repo_url:
            args += ["--repo", chart.repo_url]
        if version:
            args += ["--version", version]
        if wait:
            args.append("--wait")
        if create_namespace:
            args.append("--create-namespace")
        if atomic:
            args.append("--atomic")
        return args + self.global_args(namespace)

    # ---- the protocol ----------------------------------------------------------------------------

    async def ensure_version(self) -> tuple[int, int, int]:
        if self._checked is None:
            out = await self._run(["version", "--short"], None)
            self._checked = check_version(out)
        return self._checked

    async def install_or_upgrade(
        self, release: str, chart: ChartLike, namespace: str, values: Mapping[str, Any], *,
        version: str | None = None, wait: bool = True, timeout_s: float = 600.0,
        create_namespace: bool = False, atomic: bool = False, on_log: LogSink | None = None,
    ) -> ReleaseInfo:
        await self.ensure_version()
        args = self.upgrade_args(release, ChartRef.parse(chart), namespace, version=version, wait=wait,
                                 timeout_s=timeout_s, create_namespace=create_namespace, atomic=atomic)
        out = await self._run(args, json.dumps(dict(values)), on_log=on_log)
        return _release_from_json(json.loads(out), namespace)

    async def status(self, release: str, namespace: str) -> ReleaseInfo:
        out = await self._run(["status", release, "--output", "json", *self.global_args(namespace)], None)
        return _release_from_json(json.loads(out), namespace)

    async def release_objects(self, release: str, namespace: str) -> list[tuple[str, str, str]]:
        from hfwizard.engine.workloads import parse_manifest

        out = await self._run(["get", "manifest", release, *self.global_args(namespace)], None)
        return [(o.kind, o.name, o.namespace) for o in parse_manifest(out, namespace)]

    async def history(self, release: str, namespace: str) -> list[ReleaseInfo]:
        out = await self._run(["history", release, "--output", "json", "--max", "256",
                               *self.global_args(namespace)], None)
        return [ReleaseInfo.from_summary({**row, "name": release, "namespace": namespace})
                for row in json.loads(out or "[]")]

    async def rollback(self, release: str, namespace: str, revision: int | None = None, *, wait: bool = True,
                       timeout_s: float = 600.0, on_log: LogSink | None = None) -> ReleaseInfo:
        args = ["rollback", release, *([str(revision)] if revision else []), "--timeout", f"{int(timeout_s)}s",
                *(["--wait"] if wait else []), *self.global_args(namespace)]
        await self._run(args, None, on_log=on_log)
        return await self.status(release, namespace)

    async def uninstall(self, release: str, namespace: str, *, wait: bool = True, timeout_s: float = 600.0,
                        on_log: LogSink | None = None) -> None:
        args = ["uninstall", release, "--timeout", f"{int(timeout_s)}s", *(["--wait"] if wait else []),
                *self.global_args(namespace)]
        await self._run(args, None, on_log=on_log)

    async def render(self, release: str, chart: ChartLike, namespace: str, values: Mapping[str, Any], *,
                     version: str | None = None) -> dict[str, str]:
        ref = ChartRef.parse(chart)
        args = ["template", release, ref.ref, "--values", "-", *(["--repo", ref.repo_url] if ref.repo_url else []),
                *(["--version", version] if version else []), *self.global_args(namespace)]
        out = await self._run(args, json.dumps(dict(values)))
        docs: dict[str, str] = {}
        for doc in out.split("\n---\n"):
            m = re.search(r"^# Source: (.+)$", doc, re.M)
            if m:
                docs[m.group(1)] = docs.get(m.group(1), "") + doc.strip() + "\n"
        return docs

    async def list_releases(self, namespace: str | None = None, *, all_states: bool = True) -> list[ReleaseInfo]:
        args = ["list", "--output", "json", *(["--all"] if all_states else []),
                *(["--all-namespaces"] if namespace is None else []), *self.global_args(namespace)]
        return [ReleaseInfo.from_summary(row) for row in json.loads(await self._run(args, None) or "[]")]

    async def recover_pending(self, release: str, namespace: str) -> ReleaseInfo | None:
        """Pending upgrade/rollback: roll back to the last deployed revision; pending first install: remove."""
        rows = await self.history(release, namespace)
        if not rows or not rows[-1].pending:
            return rows[-1] if rows else None
        deployed = [r for r in rows[:-1] if r.status in ("deployed", "superseded")]
        if deployed:
            return await self.rollback(release, namespace, deployed[-1].revision)
        await self.uninstall(release, namespace, wait=True)
        return None

    # ---- running helm ----------------------------------------------------------------------------

    async def _run(self, args: Sequence[str], stdin: str | None, *, on_log: LogSink | None = None) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                self.binary, *args, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except FileNotFoundError:
            raise BadInput(f"helm binary {self.binary!r} not found",
                           remedy="install Helm 3.8+ or set install.helm: embedded (no binary needed)") from None
        assert proc.stdout is not None and proc.stderr is not None
        tail: deque[str] = deque(maxlen=20)

        async def pump() -> None:
            assert proc.stderr is not None
            async for raw in proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    tail.append(line)
                    if on_log is not None:
                        on_log(line)

        pumping = asyncio.create_task(pump())
        try:
            if stdin is not None:
                assert proc.stdin is not None
                proc.stdin.write(stdin.encode())
                await proc.stdin.drain()
                proc.stdin.close()
            out = await proc.stdout.read()
            await proc.wait()
            await pumping
        except BaseException:
            await _terminate(proc)
            pumping.cancel()
            raise
        if proc.returncode != 0:
            message = "\n".join(tail) or f"helm exited with {proc.returncode}"
            message = message.removeprefix("Error: ")
            error: HelmError = error_from_text(message)
            raise error
        return out.decode("utf-8", "replace")


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _release_from_json(data: Mapping[str, Any], namespace: str) -> ReleaseInfo:
    info = data.get("info") or {}
    chart = (data.get("chart") or {}).get("metadata") or {}
    if not data.get("name"):
        raise ReleaseNotFound("helm returned no release")
    return ReleaseInfo.from_summary({
        "name": data.get("name"), "namespace": data.get("namespace") or namespace,
        "revision": data.get("version"), "status": info.get("status"),
        "chart": f"{chart.get('name', '')}-{chart.get('version', '')}", "app_version": chart.get("appVersion"),
        "updated": info.get("last_deployed"), "description": info.get("description", ""),
    })
