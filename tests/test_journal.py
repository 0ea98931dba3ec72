"""The journal: append-only JSON lines, fsynced per record, tolerant of a torn last line."""

from __future__ import annotations

import json
from pathlib import Path

from hfwizard.installs import Install
from hfwizard.store.journal import Journal, JournalState, read_records, read_state


def state(folder: Path) -> JournalState:
    return read_state(folder / "journal.jsonl")


def test_records_fold_into_state(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.jsonl") as j:
        j.append("install_started", run=1, mode="install", profile_hash="h1", profile={"a": 1}, plan=["x", "y"])
        j.append("step_started", step="x", attempt=1)
        j.append("step_finished", step="x", status="ok", release="r", revision=3)
        j.append("step_started", step="y", attempt=1)
    st = state(tmp_path)
    assert st.profile_hash == "h1" and st.profile == {"a": 1}
    assert st.steps["x"].status == "done" and st.steps["x"].revision == 3
    assert st.steps["y"].status == "running"
    assert st.status == "running" and {k for k, v in st.steps.items() if v.status == "done"} == {"x"}
    assert (tmp_path / "journal.jsonl").stat().st_mode & 0o777 == 0o600
    assert Install(tmp_path).state() == "interrupted"


def test_a_new_run_marks_a_step_left_running_as_interrupted(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.jsonl") as j:
        j.append("install_started", run=1, profile_hash="h")
        j.append("step_started", step="x", attempt=1)
        j.append("install_started", run=2, profile_hash="h")
    st = state(tmp_path)
    assert st.runs == 2 and st.steps["x"].status == "interrupted" and st.steps["x"].attempts == 1


def test_torn_last_line_is_skipped_and_the_next_record_starts_fresh(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.jsonl") as j:
        j.append("install_started", run=1, profile_hash="h")
        j.append("step_started", step="x", attempt=1)
    path = tmp_path / "journal.jsonl"
    with path.open("ab") as fh:
        fh.write(b'{"event":"step_finished","step":"x","revi')  # killed mid-write
    st = state(tmp_path)
    assert st.torn and st.steps["x"].status == "running"
    with Journal(tmp_path / "journal.jsonl") as j:
        j.append("step_finished", step="x", status="ok")
    records, torn = read_records(path)
    assert torn and [r["event"] for r in records] == ["install_started", "step_started", "step_finished"]
    assert state(tmp_path).steps["x"].status == "done"


def test_finish_records_map_to_install_states(tmp_path: Path) -> None:
    for status, shown in (("ok", "done"), ("failed", "failed"), ("interrupted", "interrupted")):
        folder = tmp_path / status
        with Journal(folder / "journal.jsonl") as j:
            j.append("install_started", run=1, profile_hash="h")
            j.append("install_finished", status=status, exit_code=0)
        assert Install(folder).state() == shown
        assert state(folder).status == status
        assert json.loads((folder / "journal.jsonl").read_text().splitlines()[-1])["status"] == status
