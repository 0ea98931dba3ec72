"""Reading the Altinity operator's status: readiness of an installation, stalls, and what changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

__all__ = ["InstallationWatch", "Progress", "aborted", "changes", "expected_hosts", "readiness"]


def expected_hosts(obj: JSON) -> int:
    """Hosts an installation asks for: shards x replicas summed over its clusters."""
    total = 0
    for cluster in ((obj.get("spec") or {}).get("configuration") or {}).get("clusters") or []:
        layout = cluster.get("layout") or {}
        total += int(layout.get("shardsCount") or 1) * int(layout.get("replicasCount") or 1)
    return total



def _kind_name(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', 'installation')} {meta.get('namespace', '')}/{meta.get('name', '?')}"


def _last_error(status: JSON) -> str | None:
    errors = status.get("errors") or []
    return status.get("error") or (str(errors[-1]) if errors else None)


def readiness(obj: JSON) -> tuple[bool, str]:
    """Whether the operator finished a CHI/CHK (status Completed, every host there), and a summary
    naming the installation and what its status says; the summary changes whenever progress is made."""
    status = obj.get("status") or {}
    state = status.get("status") or "not yet picked up by the operator"
    want = expected_hosts(obj)
    hosts = int(status.get("hosts") or 0)
    completed = int(status.get("hostsCompleted") or 0)
    parts = [f"{_kind_name(obj)}: {state}", f"{completed}/{want} hosts completed"]
    if status.get("action"):
        parts.append(f"last action: {status['action']}")
    error = _last_error(status)
    if error:
        parts.append(f"error: {error}")
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    seen = status.get("generation")
    stale = seen is not None and generation and int(seen) < generation
    if stale:
        parts.append(f"operator has seen generation {seen} of {generation}")
    ready = state == "Completed" and not stale and (hosts >= want or completed >= want)
    return ready, ", ".join(parts)


def aborted(obj: JSON) -> str | None:
    """A message when the operator gave up on an installation (status Aborted), else None."""
    status = obj.get("status") or {}
    if status.get("status") != "Aborted":
        return None
    return f"{_kind_name(obj)}: the operator aborted it ({_last_error(status) or 'no error recorded'})"


@dataclass(frozen=True)
class Progress:
    """One look at an installation: ready, or not and why; `failure` set when waiting is pointless."""

    ready: bool
    summary: str
    failure: str | None = None


@dataclass
class InstallationWatch:
    """Watches one installation over successive polls: ready, moving, aborted by the operator, or
    stalled (its status summary unchanged for `stall_seconds`). Times come from the caller's clock."""

    stall_seconds: float
    _summary: str | None = field(default=None, init=False)
    _since: float = field(default=0.0, init=False)

    def observe(self, obj: JSON, now: float) -> Progress:
        ready, summary = readiness(obj)
        if ready:
            return Progress(True, summary)
        gave_up = aborted(obj)
        if gave_up:
            return Progress(False, summary, gave_up)
        if summary != self._summary:
            self._summary, self._since = summary, now
        elif now - self._since >= self.stall_seconds:
            return Progress(False, summary, f"stalled, no progress for {now - self._since:.0f}s: {summary}")
        return Progress(False, summary)


_SERVER_SET = ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields", "selfLink")


def changes(before: JSON | None, after: JSON) -> list[str]:
    """What applying `after` over `before` changes, one line per field (`path: old -> new`); what the
    server sets (status, resourceVersion, uid ...) and fields `after` does not speak of are left out."""
    if before is None:
        return [f"{after.get('kind')} {after['metadata'].get('name')}: new"]
    out: list[str] = []
    _diff(before, after, "", out)
    return out


def _diff(old: Any, new: Any, path: str, out: list[str]) -> None:
    if isinstance(new, dict) and isinstance(old, dict):
        for key, value in new.items():
            if (path == "" and key == "status") or (path == ".metadata" and key in _SERVER_SET):
                continue
            _diff(old.get(key), value, f"{path}.{key}", out)
    elif isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, f"{path}[{index}]", out)
    elif old != new:
        out.append(f"{path.lstrip('.')}: {_short(old)} -> {_short(new)}")


def _short(value: Any) -> str:
    text = "(none)" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
