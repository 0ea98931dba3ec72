"""The store: InstallDir names every file of an install, and its status comes from the one journal reader."""

from __future__ import annotations

from pathlib import Path

from hfwizard.draft import Draft
from hfwizard.installs import find_install, list_installs
from hfwizard.store import InstallDir, InstallStatus, Journal, StepStatus


def test_install_dir_names_every_file_and_creates_its_folder_0700(tmp_path: Path) -> None:
    inst = InstallDir.under(tmp_path, "prod-eu")
    assert not inst.exists() and not (tmp_path / "installs").exists()  # building one touches nothing
    assert inst.create().exists() and inst.path == tmp_path / "installs" / "prod-eu"
    assert inst.path.stat().st_mode & 0o777 == 0o700 and (tmp_path / "installs").stat().st_mode & 0o777 == 0o700
    assert inst.name == "prod-eu" and inst.root == tmp_path
    files = {inst.profile_path, inst.draft_path, inst.position_path, inst.journal_path, inst.lock_path,
             inst.lock_holder_path, inst.emulator_log_path, inst.logs_dir, inst.cache_dir}
    assert len(files) == 9 and all(f.parent == inst.path for f in files)


def test_status_comes_from_the_journal_and_lists_as_before(tmp_path: Path) -> None:
    inst = InstallDir.under(tmp_path, "a").create()
    assert inst.status() is InstallStatus.NEW and inst.state() == "new"
    with Journal(inst.journal_path) as j:
        j.append("install_started", run=1, profile_hash="h")
        j.append("step_started", step="namespace", attempt=1)
    assert inst.status() is InstallStatus.RUNNING and inst.status().resumable and inst.state() == "interrupted"
    assert inst.read_journal().steps["namespace"].status is StepStatus.RUNNING
    with Journal(inst.journal_path) as j:
        j.append("step_finished", step="namespace", status="ok")
        j.append("install_finished", status="ok", exit_code=0)
    assert inst.status() is InstallStatus.OK and not inst.status().resumable and inst.state() == "done"
    assert inst.read_journal().steps["namespace"].record["status"] == "ok"


def test_drafts_and_listings_use_the_install_dir(tmp_path: Path) -> None:
    draft = Draft(tmp_path, "one")
    draft.set("target.namespace", "hf")
    draft.save()
    draft.save_step("cluster")
    inst = find_install(tmp_path, "one")
    assert inst.has_draft() and inst.draft_path.is_file() and inst.position_path.is_file()
    assert Draft.saved_step(tmp_path, "one") == "cluster" and Draft.exists(tmp_path, "one")
    draft.reset()
    assert not inst.has_draft() and not inst.position_path.exists()
    assert [i.name for i in list_installs(tmp_path)] == ["one"]
