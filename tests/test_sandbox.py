"""`hfwizard sandbox`: the real platform rehearsed into the emulated cluster (charts from a loopback repository,
a mirror folder or the cache), secrets replaced by placeholders, killed with SIGKILL part-way and resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hfwizard.platform.catalog import load_catalog
from hfwizard.sandbox.emulator import ClusterThread
from tests.engine_support import core_sandbox_profile, events
from tests.platform_support import CANARIES, CHARTS, CHARTS_MISSING, cloud_profile, serve

pytestmark = pytest.mark.skipif(not (CHARTS / "index.yaml").is_file(), reason=CHARTS_MISSING)


# A well-formed Clerk secret key: the rehearsal's preflight checks its format like an install's.
SANDBOX_CANARIES = {**CANARIES, "HF_CANARY_CLERK": "sk_test_CanarySandboxClerk0101"}


def _environ() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    out.update(SANDBOX_CANARIES, HFWIZARD_SANDBOX_READY_DELAY="0.05", HFWIZARD_SANDBOX_STEP_DELAY="0",
               PYTHONUNBUFFERED="1")
    return out


def _sandbox(*args: str, state: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hfwizard", "sandbox", "--json", *args, "--state-dir", str(state)],
                          cwd=cwd, env=env or _environ(), capture_output=True, text=True, timeout=300)


def _operator_profile(folder: Path, repository: str) -> Path:
    """An operator's AWS profile whose every secret is a canary, its charts from `repository`."""
    (folder / "license.jwt").write_text("Canary-sandbox-license-1d1d")
    (folder / "public.pem").write_text("Canary-sandbox-pubkey-2e2e")
    # A test publishable key to pair with the canary's sk_test_ secret key; the emulator seeds StorageClass
    # "standard" only, so the profile names none (the cluster's default).
    profile = cloud_profile("aws", **{"metadata.name": "acme", "charts.repository": repository,
                                      "clerk.publishableKey": "pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA",
                                      "clickhouse.storageClass": None,
                                      "platform.license.jwt": "file:license.jwt",
                                      "platform.license.publicKey": "file:public.pem"})
    path = folder / "acme.yaml"
    path.write_text(yaml.safe_dump(profile.model_dump(by_alias=True, exclude_none=True, mode="json")))
    return path


def _cluster_objects(idir: Path, api_version: str, kind: str) -> list[dict[str, Any]]:
    """What the rehearsal's emulated cluster holds, read by starting it again from its state file."""
    with ClusterThread(state_file=idir / "cluster-state.json", controllers=False) as cluster:
        return list(cluster.cluster.emulator.list_objects(api_version, kind, "highflame"))  # type: ignore[union-attr]


def test_the_operators_profile_rehearsed_from_the_loopback_repository(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with serve(CHARTS) as url:
        done = _sandbox("--profile", str(_operator_profile(tmp_path, url)), state=state, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    catalog = load_catalog()
    releases = {catalog.release_name(s) for s in catalog.services}
    evs = events(done.stdout)
    finished = {e["step_id"] for e in evs if e["event"] == "step_finished" and e["status"] == "ok"}
    assert {f"helm/{r}" for r in releases} <= finished and len(releases) == 19
    idir = state / "installs" / "sandbox"
    deployments = _cluster_objects(idir, "apps/v1", "Deployment")
    assert {d["metadata"]["name"] for d in deployments} >= releases - {"highflame-redteam"}
    for d in deployments:
        assert d["status"].get("readyReplicas", 0) >= d["spec"].get("replicas", 1), d["metadata"]["name"]
    # ClickHouse through the (emulated) Altinity operator, from the operator's chart in the same cache.
    assert {"helm/clickhouse-operator", "clickhouse/keeper", "clickhouse/server", "clickhouse/setup",
            "clickhouse/backup"} <= finished
    chis = _cluster_objects(idir, "clickhouse.altinity.com/v1", "ClickHouseInstallation")
    assert [(c["metadata"]["name"], c["status"]["status"]) for c in chis] == [("ch", "Completed")]
    assert (idir / "cache" / "charts" / "altinity-clickhouse-operator-0.25.6.tgz").is_file()
    # Every secret was resolved (so a wrong reference fails) and then replaced: no value in any file.
    files = "\n".join(p.read_bytes().decode("utf-8", "replace") for p in idir.rglob("*")
                      if p.is_file() and p.suffix != ".tgz")
    for canary in [*SANDBOX_CANARIES.values(), "Canary-sandbox-license-1d1d", "Canary-sandbox-pubkey-2e2e"]:
        assert canary not in files and canary not in done.stdout + done.stderr
    license_secret = next(s for s in _cluster_objects(idir, "v1", "Secret")
                          if s["metadata"]["name"] == "highflame-license")
    assert set(license_secret["data"]) == {"license.jwt", "public.pem"}


def test_without_charts_it_fails_naming_what_to_pass(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # No mirror anywhere: not the one the test session gives every rehearsal either.
    env = {k: v for k, v in _environ().items() if k != "HFWIZARD_SANDBOX_CHARTS"}
    done = _sandbox("--profile", str(_operator_profile(tmp_path, "http://127.0.0.1:9/charts")), state=state,
                    cwd=tmp_path, env=env)
    assert done.returncode == 1
    failed = [e for e in events(done.stdout) if e["event"] == "step_failed"]
    assert failed and failed[0]["step_id"] == "charts"
    assert "http://127.0.0.1:9/charts/index.yaml" in failed[0]["error"]
    assert "--charts DIR" in failed[0]["remedy"]
    assert not _cluster_objects(state / "installs" / "sandbox", "v1", "Secret")  # nothing changed


def test_sandbox_killed_then_resumed(tmp_path: Path) -> None:
    """The bundled rehearsal (AWS values) with the seed's modules off, from a mirror folder, SIGKILLed during
    a release's Helm wait; `hfwizard resume` restarts the emulator from its state file and finishes like a
    real install. (The core platform is enough for the mechanics: the whole platform's rehearsal is the
    first test here, and its kill and resume is test_platform_install's upgrade.)"""
    state = tmp_path / "state"
    core = core_sandbox_profile(tmp_path)
    environ = _environ()
    environ["HFWIZARD_SANDBOX_READY_DELAY"] = "0.5"
    proc = subprocess.Popen([sys.executable, "-m", "hfwizard", "sandbox", "--json", "--charts", str(CHARTS),
                             "--profile", str(core), "--state-dir", str(state)], cwd=tmp_path, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if '"progress"' in line and '"helm/highflame-collector"' in line:  # after ClickHouse, flag and authn
            proc.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline
    proc.communicate(timeout=30)
    assert proc.returncode == -9
    idir = state / "installs" / "sandbox"
    assert (idir / "cluster-state.json").exists()
    environ["HFWIZARD_SANDBOX_READY_DELAY"] = "0.05"
    resumed = subprocess.run([sys.executable, "-m", "hfwizard", "resume", "--json", "--state-dir", str(state)],
                             cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "REHEARSAL" in resumed.stderr
    evs = events(resumed.stdout)
    skipped = {e["step_id"] for e in evs if e["event"] == "step_finished" and e["status"] == "skipped"}
    assert {"charts", "namespace", "secrets/generated", "helm/highflame-flag", "helm/highflame-authn",
            "helm/clickhouse-operator"} <= skipped
    assert evs[-1]["event"] == "done" and evs[-1]["exit_code"] == 0
    recs = [json.loads(x) for x in (idir / "journal.jsonl").read_text().splitlines() if x.startswith("{")]
    assert [r["mode"] for r in recs if r["event"] == "install_started"] == ["install", "resume"]
    # The resume installed from the install's own chart cache (a mirror folder the charts step wrote).
    assert (idir / "cache" / "charts" / "index.yaml").is_file()


def test_a_wrong_digest_fails_before_anything_changes(tmp_path: Path) -> None:
    """A mirror whose index gives another digest for a chart: the charts step fails naming the chart, its
    version and where it came from, and the emulated cluster holds no namespace, Secret or release."""
    mirror = tmp_path / "mirror"
    shutil.copytree(CHARTS, mirror)
    index = yaml.safe_load((mirror / "index.yaml").read_text())
    entry = next(e for e in index["entries"]["highflame-generic"] if str(e["version"]) == "1.0.3")
    entry["digest"] = "0" * 64
    (mirror / "index.yaml").write_text(yaml.safe_dump(index))
    state = tmp_path / "state"
    done = _sandbox("--charts", str(mirror), state=state, cwd=tmp_path)
    assert done.returncode == 1
    failed = [e for e in events(done.stdout) if e["event"] == "step_failed"]
    assert [e["step_id"] for e in failed] == ["charts"]
    assert "digest mismatch for highflame-generic 1.0.3" in failed[0]["error"]
    assert str(mirror / "highflame-generic-1.0.3.tgz") in failed[0]["error"]
    idir = state / "installs" / "sandbox"
    assert not [n for n in _cluster_objects(idir, "v1", "Secret")]
    assert not (idir / "cache" / "charts" / "highflame-generic-1.0.3.tgz").exists()


def test_charts_pull_writes_a_mirror_folder(tmp_path: Path) -> None:
    """`hfwizard charts pull --to DIR` from the loopback repository: every chart of the catalog with its
    digest in an index.yaml, which the charts step then accepts as a mirror."""
    dest = tmp_path / "mirror"
    with serve(CHARTS) as url:
        done = subprocess.run([sys.executable, "-m", "hfwizard", "charts", "pull", "--to", str(dest),
                               "--repository", url], cwd=tmp_path, env=_environ(), capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 0, done.stderr
    index = yaml.safe_load((dest / "index.yaml").read_text())
    catalog = load_catalog()
    for pin in (catalog.charts.generic, catalog.charts.redteam, catalog.charts.ingress, catalog.clickhouse_operator):
        entry = index["entries"][pin.name][0]
        assert entry["version"] == pin.version
        assert (dest / entry["urls"][0]).read_bytes() == (CHARTS / f"{pin.name}-{pin.version}.tgz").read_bytes()
    from hfwizard.platform.charts import ChartSource

    got = ChartSource(str(dest)).fetch(catalog.charts.generic.name, catalog.charts.generic.version)
    assert got.digest == index["entries"][catalog.charts.generic.name][0]["digest"]
