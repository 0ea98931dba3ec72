"""`hfwizard status NAME` and `hfwizard support-bundle NAME` when things are wrong: no such install (exit 2),
a kubeconfig or context that cannot be used (exit 2), a cluster that does not answer (exit 1), each
naming what to do and never a traceback; a watch rides out a cluster that stops answering; --help shows
examples. The cluster that does not answer is a loopback port nothing listens on."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from hfwizard.store.install_dir import InstallDir
from tests.engine_support import ROOT, env, hfwizard, write_profile


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the block ends: connections are refused


@pytest.fixture
def stranded(tmp_path: Path) -> dict[str, object]:
    """An install ("canary") whose kubeconfig points at a server that is not there."""
    port = _dead_port()
    kc = tmp_path / "kubeconfig"
    kc.write_text(f"""apiVersion: v1
kind: Config
current-context: sandbox
clusters: [{{name: sandbox, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: sandbox, user: {{token: x}}}}]
contexts: [{{name: sandbox, context: {{cluster: sandbox, user: sandbox}}}}]
""")
    inst = InstallDir.under(tmp_path / "state", "canary").create()
    inst.profile_path.write_text(write_profile(tmp_path, kc).read_text())
    (inst.path / "journal.jsonl").write_text('{"event": "install_started"}\n'
                                             '{"event": "install_finished", "status": "ok", "exit_code": 0}\n')
    return {"state": tmp_path / "state", "server": f"http://127.0.0.1:{port}", "inst": inst, "tmp": tmp_path}


def test_no_such_install_is_bad_input_and_says_where_to_look(tmp_path: Path) -> None:
    for command in ("status", "support-bundle"):
        done = hfwizard(command, "ghost", state=tmp_path / "state", cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "no install named 'ghost'" in done.stderr and "-> `hfwizard status` lists" in done.stderr
        assert "Traceback" not in done.stderr


def test_status_of_an_unreachable_cluster_fails_and_names_the_server(stranded: dict[str, object]) -> None:
    state, tmp, server = Path(str(stranded["state"])), Path(str(stranded["tmp"])), stranded["server"]
    done = hfwizard("status", "canary", state=state, cwd=tmp)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot reach the API server {server}: connection refused" in done.stderr
    assert "-> check the VPN" in done.stderr and "--context NAME" in done.stderr
    assert done.stdout == "", "no table of empty reads"
    missing = hfwizard("status", "canary", "--kubeconfig", str(tmp / "nope.yaml"), state=state, cwd=tmp)
    assert missing.returncode == 2 and "nope.yaml does not exist" in missing.stderr, missing.stderr
    context = hfwizard("status", "canary", "--context", "elsewhere", state=state, cwd=tmp)
    assert context.returncode == 2 and "context 'elsewhere' not found" in context.stderr, context.stderr
    assert "kubectl config get-contexts" in context.stderr
    for run in (done, missing, context):
        assert "Traceback" not in run.stderr and "internal error" not in run.stderr


def test_a_watch_rides_out_an_unreachable_cluster_until_ctrl_c(stranded: dict[str, object]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "hfwizard", "status", "canary", "--watch", "--interval", "0.5",
                             "--json", "--state-dir", str(stranded["state"])], cwd=ROOT, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen = [json.loads(proc.stdout.readline()) for _ in range(2)]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert [e["event"] for e in seen] == ["status_failed", "status_failed"], seen
    assert seen[0]["message"] == f"cannot reach the API server {stranded['server']}: connection refused"
    assert proc.returncode == 0, err


def test_support_bundle_of_an_unreachable_cluster_keeps_the_install_files_and_fails(
        stranded: dict[str, object]) -> None:
    state, tmp = Path(str(stranded["state"])), Path(str(stranded["tmp"]))
    started = time.monotonic()
    done = hfwizard("support-bundle", "canary", state=state, cwd=tmp)
    assert done.returncode == 1, done.stdout + done.stderr
    assert time.monotonic() - started < 30, "one refused probe, not every collector's timeout"
    assert f"cannot reach the API server {stranded['server']}" in done.stderr
    assert "-> check the VPN" in done.stderr and "`hfwizard support-bundle canary` again" in done.stderr
    [path] = (Path(str(stranded["inst"].path)) / "support").iterdir()  # type: ignore[attr-defined]
    assert str(path) in done.stderr, "the bundle written is named"
    with tarfile.open(path) as tar:
        names = tar.getnames()
        index = json.loads(tar.extractfile(next(n for n in names if n.endswith("collectors.json"))).read())  # type: ignore[union-attr]
    assert any(n.endswith("install/journal.jsonl") for n in names)
    kube = next(c for c in index["collectors"] if c["name"] == "kubernetes")
    assert kube["outcome"] == "failed" and "connection refused" in kube["error"]


def test_runs_that_change_the_cluster_refuse_an_unreachable_one_before_asking(stranded: dict[str, object]) -> None:
    state, tmp, server = Path(str(stranded["state"])), Path(str(stranded["tmp"])), stranded["server"]
    for args in (("uninstall", "canary", "--yes"), ("upgrade", "canary", "--yes")):
        done = hfwizard(*args, state=state, cwd=tmp)
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"cannot reach the API server {server}: connection refused" in done.stderr, done.stderr
        assert "internal error" not in done.stdout + done.stderr and "Traceback" not in done.stderr
        assert not (Path(str(stranded["inst"].path)) / "support").exists(), "nothing ran: no failure to bundle"  # type: ignore[attr-defined]
    wrong = hfwizard("uninstall", "canary", "--yes", "--context", "elsewhere", state=state, cwd=tmp)
    assert wrong.returncode == 2 and "context 'elsewhere' not found" in wrong.stderr, wrong.stderr


def test_help_shows_examples() -> None:
    for command, example in (("status", "hfwizard status prod --watch"),
                             ("support-bundle", "hfwizard support-bundle prod --out")):
        done = subprocess.run([sys.executable, "-m", "hfwizard", command, "--help"], cwd=ROOT, env=env(),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and example in done.stdout, done.stdout


def test_a_day_two_run_ends_in_its_own_words() -> None:
    from hfwizard.frontends.commands import Outcome, finish

    finish(0, what="uninstall")  # nothing to say
    with pytest.raises(Outcome) as ended:
        finish(3, what="uninstall", carry_on="hfwizard uninstall canary")
    assert ended.value.exit_code == 3
    assert ended.value.message == "interrupted: run `hfwizard uninstall canary` to carry on"
    with pytest.raises(Outcome) as failed:
        finish(1, what="upgrade", carry_on="hfwizard upgrade canary")
    assert failed.value.message == "the upgrade failed (see above)"
