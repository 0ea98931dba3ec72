"""The one vocabulary of statuses: of an install (a run's outcome) and of a step, as the journal records them."""

from __future__ import annotations

from enum import StrEnum


class InstallStatus(StrEnum):
    """Where an install stands, from the journal's last install-level record (and a run's outcome)."""

    NEW = "new"  # no run yet
    RUNNING = "running"  # a run started and wrote no finish record: it runs, or it was killed
    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    LOCKED = "locked"  # a run that never started: another install holds the lock
    REFUSED = "refused"  # a run that never started: the profile changed since the unfinished run

    @property
    def resumable(self) -> bool:
        """An unfinished install `hfwizard resume` carries on."""
        return self in (InstallStatus.RUNNING, InstallStatus.FAILED, InstallStatus.INTERRUPTED)

    @property
    def listed(self) -> str:
        """The word `hfwizard status` and the welcome screen show: a run without a finish record is
        shown as interrupted (a live run holds the lock; `status` is about the saved state), ok as done."""
        return {InstallStatus.OK: "done", InstallStatus.RUNNING: "interrupted"}.get(self, self.value)


class StepStatus(StrEnum):
    """What the journal says about one step."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
