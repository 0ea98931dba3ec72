"""The install journal: append-only JSON lines in the install's folder, each fsynced before going on.

Records (one JSON object per line, `event` names the kind):
    install_started   run, mode (install|resume), profile_hash, profile (references only), plan
    step_started      step, attempt
    step_note         step, plus what the step is about to do (e.g. the Helm call and its base revision)
    step_finished     step, status (ok), detail, and for a release: release, revision, values_hash
    step_failed       step, error, interrupted (true when Ctrl+C / SIGTERM stopped it)
    install_finished  status (an InstallStatus), exit_code

A process killed mid-write leaves at most one torn last line: the reader skips it and the next writer
starts on a fresh line. No record ever holds a secret value (profiles hold references only).
`Journal` writes; `read_state` is the one reader (the engine's resume and `hfwizard status` both use it).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfwizard.state import FILE_MODE, ensure_dir, fsync_dir
from hfwizard.store.status import InstallStatus, StepStatus

INSTALL_STARTED = "install_started"
INSTALL_FINISHED = "install_finished"
STEP_STARTED = "step_started"
STEP_NOTE = "step_note"
STEP_FINISHED = "step_finished"
STEP_FAILED = "step_failed"


@dataclass
class StepState:
    """What the journal says about one step."""

    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    revision: int | None = None  # a release step's Helm revision when it finished
    release: str | None = None
    error: str | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)  # notes of the latest attempt
    record: dict[str, Any] = field(default_factory=dict)  # the step_finished record, when done


@dataclass
class JournalState:
    """The journal folded into one picture: the last run's profile, each step's state, the outcome."""

    runs: int = 0
    profile_hash: str | None = None
    profile: dict[str, Any] | None = None
    steps: dict[str, StepState] = field(default_factory=dict)
    status: InstallStatus = InstallStatus.NEW
    exit_code: int | None = None
    torn: bool = False  # the last line was incomplete (a killed writer)

    def step(self, step_id: str) -> StepState:
        return self.steps.setdefault(step_id, StepState())


class Journal:
    """Appends records to a journal file, each written and fsynced before returning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def open(self) -> Journal:
        ensure_dir(self.path.parent)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            size = os.fstat(fd).st_size
            if size:
                # A killed writer may have left a line without its newline: end it, so the next
                # record is a line of its own and the torn one stays unparseable (and skipped).
                with self.path.open("rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        os.write(fd, b"\n")
                        os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if created:
            fsync_dir(self.path.parent)
        return self

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Journal:
        return self.open() if self._fd is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record and fsync it: when this returns, the record survives a crash."""
        if self._fd is None:
            self.open()
        assert self._fd is not None
        record = {"event": event, "at": round(time.time(), 3), **fields}
        line = json.dumps(record, separators=(",", ":"), sort_keys=False) + "\n"
        # One write call per record: O_APPEND makes it land whole at the end (or, killed midway,
        # as the single torn last line readers skip).
        os.write(self._fd, line.encode("utf-8"))
        os.fsync(self._fd)
        return record

    def state(self) -> JournalState:
        return read_state(self.path)


def read_records(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """Every whole record in the journal, and whether a torn line was skipped."""
    out: list[dict[str, Any]] = []
    torn = False
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return out, False
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            torn = True  # a line a killed process did not finish
            continue
        if isinstance(rec, dict) and isinstance(rec.get("event"), str):
            out.append(rec)
        else:
            torn = True
    return out, torn


def _install_status(value: Any) -> InstallStatus:
    try:
        return InstallStatus(str(value))
    except ValueError:
        return InstallStatus.FAILED  # a record we cannot read says nothing good


def fold(records: list[dict[str, Any]]) -> JournalState:
    """The records, in order, folded into a JournalState."""
    st = JournalState()
    for rec in records:
        kind = rec["event"]
        if kind == INSTALL_STARTED:
            st.runs += 1
            st.profile_hash = rec.get("profile_hash")
            st.profile = rec.get("profile")
            st.status = InstallStatus.RUNNING
            st.exit_code = None
            # A step left running by a killed run is interrupted, whatever the next run does.
            for s in st.steps.values():
                if s.status is StepStatus.RUNNING:
                    s.status = StepStatus.INTERRUPTED
        elif kind == INSTALL_FINISHED:
            st.status = _install_status(rec.get("status", "failed"))
            st.exit_code = rec.get("exit_code")
        elif kind == STEP_STARTED:
            s = st.step(rec["step"])
            s.status = StepStatus.RUNNING
            s.attempts = max(s.attempts + 1, int(rec.get("attempt", 0)))
            s.notes, s.error, s.record = [], None, {}
        elif kind == STEP_NOTE:
            st.step(rec["step"]).notes.append(rec)
        elif kind == STEP_FINISHED:
            s = st.step(rec["step"])
            s.status = StepStatus.DONE
            s.revision = rec.get("revision")
            s.release = rec.get("release")
            s.record = rec
        elif kind == STEP_FAILED:
            s = st.step(rec["step"])
            s.status = StepStatus.INTERRUPTED if rec.get("interrupted") else StepStatus.FAILED
            s.error = rec.get("error")
    return st


def read_state(path: Path) -> JournalState:
    """The journal at `path` folded into a JournalState (an empty one when there is no journal)."""
    records, torn = read_records(path)
    st = fold(records)
    st.torn = torn
    return st
