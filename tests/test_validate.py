"""Inputs checked before anything changes: state directory, kubeconfig, CA files, references (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hfwizard.errors import BadInput
from hfwizard.profile_io import parse_profile
from hfwizard.state import install_dir
from hfwizard.validate import check_inputs, check_kubeconfig, check_state_root, references

ROOT = Path(__file__).resolve().parent.parent


def profile(extra: str = "") -> object:
    return parse_profile("apiVersion: hfwizard/v1\nkind: InstallProfile\nmetadata: {name: demo}\n"
                         "target: {cloud: existing, namespace: highflame}\n" + extra).profile


def test_a_state_dir_that_is_a_file_is_bad_input(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a folder")
    with pytest.raises(BadInput, match="is not a folder"):
        check_state_root(blocker / "deeper")
    with pytest.raises(BadInput, match=r"state directory.*is not a folder"):
        install_dir(blocker, "demo")  # the path the engine takes: bad input, not an internal error


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere; a read-only folder needs a user")
def test_a_read_only_state_dir_is_bad_input(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(BadInput, match="not writable"):
            check_state_root(tmp_path / "state")
    finally:
        tmp_path.chmod(0o700)


def test_kubeconfig_missing_fifo_or_list(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"--kubeconfig: kubeconfig .*nope does not exist"):
        check_kubeconfig(tmp_path / "nope", field="--kubeconfig")
    fifo = tmp_path / "kc.fifo"
    os.mkfifo(fifo)
    with pytest.raises(BadInput, match="named pipe"):
        check_kubeconfig(fifo, field="target.kubeconfig")
    real = tmp_path / "config"
    real.write_text("apiVersion: v1\nkind: Config\n")
    check_kubeconfig(f"{tmp_path / 'missing'}{os.pathsep}{real}", field="$KUBECONFIG")  # merged, one is enough


def test_every_reference_that_does_not_resolve_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_NOPE_PW", raising=False)
    p = profile(f"postgres: {{host: db, password: 'env:HF_NOPE_PW'}}\n"
                f"redis: {{endpoints: ['r:6379'], password: 'file:{tmp_path}'}}\n"
                f"clerk: {{secretKey: 'k8s:clerk/sk'}}\n")
    assert dict(references(p)) == {"postgres.password": "env:HF_NOPE_PW", "redis.password": f"file:{tmp_path}",
                                   "clerk.secretKey": "k8s:clerk/sk"}
    with pytest.raises(BadInput) as info:
        check_inputs(p, base_dir=tmp_path, kubeconfig=None)
    text = str(info.value)
    assert "postgres.password: secret reference env:HF_NOPE_PW: environment variable" in text
    assert "redis.password: secret reference" in text and "is a directory" in text
    assert "clerk" not in text  # k8s: references are read in the cluster
    check_inputs(p, base_dir=tmp_path, kubeconfig=None, skip_references=("postgres", "redis"))


def test_cli_preflight_exits_2_on_missing_kubeconfig_and_bad_reference(tmp_path: Path) -> None:
    prof = tmp_path / "p.yaml"
    prof.write_text("apiVersion: hfwizard/v1\nkind: InstallProfile\n"
                    f"target: {{cloud: existing, kubeconfig: {tmp_path / 'no-kubeconfig'}}}\n"
                    "postgres: {host: db.internal, password: 'env:HF_UNSET_FOR_TEST'}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "HF_UNSET_FOR_TEST")}
    run = [sys.executable, "-m", "hfwizard", "preflight", "--profile", str(prof), "--json"]
    done = subprocess.run(run, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "target.kubeconfig: kubeconfig" in done.stderr and "does not exist" in done.stderr
    assert done.stdout == ""  # refused before any check ran
    kc = tmp_path / "kubeconfig"
    kc.write_text("apiVersion: v1\nkind: Config\n")
    done = subprocess.run([*run, "--kubeconfig", str(kc)], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    assert "postgres.password: secret reference env:HF_UNSET_FOR_TEST" in done.stderr


def test_cli_install_with_a_file_as_state_dir_exits_2(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("")
    prof = tmp_path / "p.yaml"
    prof.write_text("apiVersion: hfwizard/v1\nkind: InstallProfile\ntarget: {cloud: existing}\n")
    done = subprocess.run([sys.executable, "-m", "hfwizard", "install", "--profile", str(prof), "--yes",
                           "--state-dir", str(state)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "is not a folder" in done.stderr and "internal error" not in done.stderr


def test_cli_install_refuses_bad_kubeconfig_and_references_before_anything(tmp_path: Path) -> None:
    state = tmp_path / "state"
    prof = tmp_path / "p.yaml"
    base = "apiVersion: hfwizard/v1\nkind: InstallProfile\nmetadata: {name: demo}\n"
    prof.write_text(base + f"target: {{cloud: existing, kubeconfig: {tmp_path / 'gone'}}}\n")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    run = [sys.executable, "-m", "hfwizard", "install", "--profile", str(prof), "--yes", "--state-dir", str(state)]
    done = subprocess.run(run, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "target.kubeconfig: kubeconfig" in done.stderr and "does not exist" in done.stderr
    kc = tmp_path / "kubeconfig"
    kc.write_text("apiVersion: v1\nkind: Config\n")
    prof.write_text(base + f"target: {{cloud: existing, kubeconfig: {kc}}}\n"
                    f"postgres: {{host: db.internal, password: 'file:{tmp_path}'}}\n")
    done = subprocess.run(run, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"postgres.password: secret reference file:{tmp_path}" in done.stderr and "is a directory" in done.stderr
    assert not state.exists()  # refused before the install's folder (let alone the namespace) was made
