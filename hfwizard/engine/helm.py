"""The Helm backend protocol the engine drives: chart references, release records and typed errors.

HelmError (hfwizard.errors.StepFailed)     Helm said no; `message` is Helm's own text
 ├── OperationInProgress                   another install/upgrade/rollback holds the release
 ├── ReleaseNotFound                       no such release in that namespace
 ├── HelmTimeout                           the wait for readiness ran out of time
 ├── HelmCancelled                         we ended the operation (cancel / Ctrl-C)
 └── ChartError                            the chart could not be fetched, loaded or rendered
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from hfwizard.errors import StepFailed

__all__ = [
    "ChartError",
    "ChartLike",
    "ChartRef",
    "HelmBackend",
    "HelmCancelled",
    "HelmError",
    "HelmTimeout",
    "LogSink",
    "OperationInProgress",
    "ReleaseInfo",
    "ReleaseNotFound",
    "error_from_text",
]

#: Receives one line of Helm's (or client-go's) log output at a time.
LogSink = Callable[[str], None]

PENDING_STATUSES = frozenset({"pending-install", "pending-upgrade", "pending-rollback", "uninstalling"})


class HelmError(StepFailed):
    """Helm refused or failed; the message is Helm's text (never values, which may hold secrets)."""


class OperationInProgress(HelmError):
    """The release is locked by another operation, or stuck in a pending state after a crash."""


class ReleaseNotFound(HelmError):
    pass


class HelmTimeout(HelmError):
    pass


class HelmCancelled(HelmError):
    pass


class ChartError(HelmError):
    pass


_PATTERNS: list[tuple[re.Pattern[str], type[HelmError], str | None]] = [
    (
        re.compile(r"another operation \(install/upgrade/rollback\) is in progress", re.I),
        OperationInProgress,
        "wait for the other operation, or run `hfwizard resume`, which recovers a release left pending",
    ),
    (
        re.compile(r"release: not found|release not found|has no deployed releases", re.I),
        ReleaseNotFound,
        None,
    ),
    (
        re.compile(r"context deadline exceeded|timed out waiting|timeout|resource not ready", re.I),
        HelmTimeout,
        "look at the failing pods' events; raise the timeout if the cluster is only slow",
    ),
    (re.compile(r"context canceled|cancelled|canceled", re.I), HelmCancelled, None),
    (
        re.compile(
            r"chart|Chart\.yaml|no such file|not found in .* repository|manifest unknown|"
            r"failed to (fetch|download)|parse error|template",
            re.I,
        ),
        ChartError,
        None,
    ),
]


def error_from_text(message: str, default: type[HelmError] = HelmError) -> HelmError:
    """Map Helm's error text to the typed error the engine can act on."""
    for pattern, cls, remedy in _PATTERNS:
        if pattern.search(message):
            return cls(message, remedy=remedy)
    return default(message)


@dataclass(frozen=True)
class ChartRef:
    """Where a chart comes from: a local path, an `oci://` reference, or a repository URL plus a name."""

    ref: str
    repo_url: str | None = None

    @classmethod
    def parse(cls, chart: ChartLike, repo_url: str | None = None) -> ChartRef:
        if isinstance(chart, ChartRef):
            return chart
        return cls(os.fspath(chart), repo_url)

    @property
    def kind(self) -> str:
        if self.repo_url:
            return "repo"
        if self.ref.startswith("oci://"):
            return "oci"
        if re.match(r"https?://", self.ref):
            return "url"
        return "path"

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "repo_url": self.repo_url}


#: A chart: a ChartRef, or a local path / `oci://` reference / chart URL as a string or path.
type ChartLike = ChartRef | str | os.PathLike[str]


@dataclass(frozen=True)
class ReleaseInfo:
    """One revision of a release as Helm records it."""

    name: str
    namespace: str
    revision: int
    status: (
        str  # deployed, superseded, failed, pending-install, pending-upgrade, pending-rollback, uninstalled
    )
    chart: str  # name-version, as `helm list` shows it
    app_version: str
    updated: datetime.datetime | None = None
    description: str = ""

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATUSES

    @classmethod
    def from_summary(cls, data: Mapping[str, Any]) -> ReleaseInfo:
        stamp = data.get("deployed_at") or data.get("updated") or ""
        updated = None
        if stamp:
            try:
                updated = datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
            except ValueError:
                updated = None
        chart = data.get("chart") or "-".join(
            str(p) for p in (data.get("chart_name"), data.get("chart_version")) if p
        )
        return cls(
            name=str(data.get("name", "")),
            namespace=str(data.get("namespace", "")),
            revision=int(data.get("revision") or data.get("version") or 0),
            status=str(data.get("status", "")),
            chart=str(chart),
            app_version=str(data.get("app_version") or ""),
            updated=updated,
            description=str(data.get("description") or ""),
        )


@runtime_checkable
class HelmBackend(Protocol):
    """What the engine needs from Helm; the embedded SDK and the operator's `helm` binary both fit."""

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
    ) -> ReleaseInfo: ...

    async def status(self, release: str, namespace: str) -> ReleaseInfo: ...

    async def history(self, release: str, namespace: str) -> list[ReleaseInfo]: ...

    async def rollback(
        self,
        release: str,
        namespace: str,
        revision: int | None = None,
        *,
        wait: bool = True,
        timeout_s: float = 600.0,
        on_log: LogSink | None = None,
    ) -> ReleaseInfo: ...

    async def uninstall(
        self,
        release: str,
        namespace: str,
        *,
        wait: bool = True,
        timeout_s: float = 600.0,
        on_log: LogSink | None = None,
    ) -> None: ...

    async def render(
        self,
        release: str,
        chart: ChartLike,
        namespace: str,
        values: Mapping[str, Any],
        *,
        version: str | None = None,
    ) -> dict[str, str]: ...

    async def list_releases(
        self, namespace: str | None = None, *, all_states: bool = True
    ) -> list[ReleaseInfo]: ...

    async def recover_pending(self, release: str, namespace: str) -> ReleaseInfo | None: ...

    async def release_objects(self, release: str, namespace: str) -> list[tuple[str, str, str]]:
        """(kind, name, namespace) of each object in the release's latest manifest (no contents)."""
        ...
