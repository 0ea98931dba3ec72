"""The uninstall plan: the install's releases in reverse order, then (only when confirmed) its data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfwizard.daytwo.support import releases_from_journal
from hfwizard.engine.plan import Plan, Step, StepKind
from hfwizard.profile import InstallProfile
from hfwizard.store.install_dir import InstallDir

DATA_STEP = "delete-data"
OBJECTS_STEP = "delete-objects"


@dataclass(frozen=True)
class UninstallDir(InstallDir):
    """The install's folder with the uninstall's own journal; the lock (file and Lease) is the install's,
    so an uninstall refuses while an install, upgrade or resume runs, and the reverse."""

    @property
    def journal_path(self) -> Path:
        return super().uninstall_journal_path


def installed_releases(install: InstallDir) -> list[str]:
    """The releases the install's journal names, in the order they were first installed: a release is
    started only once its dependencies are done, so this order respects every dependency."""
    return releases_from_journal(install.journal_path)


def applied_objects(profile: InstallProfile) -> list[dict[str, Any]]:
    """The objects hfwizard applies outside Helm that an uninstall deletes, in the order to delete them
    (the reverse of applying). A profile the ClickHouse objects cannot be built from has none."""
    from hfwizard.platform import clickhouse

    try:
        applied = clickhouse.applied_objects(profile)
    except Exception:  # an install from before the ClickHouse objects (or without their settings)
        return []
    return [a.obj for a in reversed(applied) if a.on_uninstall == "delete"]


def uninstall_plan(namespace: str, releases: list[str], *, delete_data: bool,
                   objects: Sequence[dict[str, Any]] = ()) -> Plan:
    """The objects hfwizard applied itself first (their operator still runs), then each release after the
    ones that depend on it (reverse install order), one at a time; the data last, when asked."""
    steps: list[Step] = []
    previous: tuple[str, ...] = ()
    if objects:
        steps.append(Step(OBJECTS_STEP, f"Delete {len(objects)} objects hfwizard applied", StepKind.DELETE_OBJECTS,
                          objects=tuple(objects)))
        previous = (OBJECTS_STEP,)
    for name in reversed(releases):
        sid = f"uninstall/{name}"
        steps.append(Step(sid, f"Remove release {name}", StepKind.UNINSTALL, previous, subject=name))
        previous = (sid,)
    if delete_data:
        steps.append(Step(DATA_STEP, "Delete the install's PersistentVolumeClaims and Secrets",
                          StepKind.DELETE_DATA, previous))
    return Plan(namespace, tuple(steps))


def kept_data_lines(namespace: str, *, deleted: bool, has_backup_bucket: bool) -> list[str]:
    """What an uninstall left in place, for the operator."""
    lines = ["the PostgreSQL databases are kept (hfwizard never drops them)"]
    if has_backup_bucket:
        lines.append("the ClickHouse backup bucket is kept (hfwizard never empties it)")
    if not deleted:
        lines.insert(0, f"PersistentVolumeClaims and hfwizard's Secrets in {namespace} are kept; "
                        "`hfwizard uninstall NAME --delete-data` removes them")
    return lines
