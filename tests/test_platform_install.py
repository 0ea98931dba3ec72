"""The real platform end to end: Highflame's own charts from a loopback chart repository, installed by
`hfwizard install` into the emulated cluster (19 services, AWS values), its databases on the real
PostgreSQL 17.2, canary secrets that must land in their Secrets and nowhere else, then an upgrade to the
newer catalog killed part-way and resumed."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from hfwizard.platform.catalog import load_catalog
from hfwizard.sandbox.emulator import ClusterThread
from tests.engine_support import events
from tests.fixtures.servers import PG_CREATOR, PG_PASSWORD, PgServer
from tests.platform_support import CANARIES, CHARTS, CHARTS_MISSING, cloud_profile, serve

pytestmark = pytest.mark.skipif(not (CHARTS / "index.yaml").is_file(), reason=CHARTS_MISSING)

NS = "highflame"
LICENSE_CANARY = "Canary-license-jwt-8c8c"
PUBKEY_CANARY = "Canary-license-pubkey-4d4d"
# The PostgreSQL canary is the server's own password, so the databases step can log in with it.
ENV_CANARIES = {**CANARIES, "HF_CANARY_PG": PG_PASSWORD}
ALL_CANARIES = {**ENV_CANARIES, "LICENSE": LICENSE_CANARY, "PUBKEY": PUBKEY_CANARY}
# Where each canary must be found: the Secret its reference feeds.
HOMES = {"HF_CANARY_GHCR": "highflame-registry-secret", "LICENSE": "highflame-license",
         "PUBKEY": "highflame-license"}


@dataclass
class Installed:
    cluster: ClusterThread
    state: Path
    folder: Path
    profile: Path
    url: str
    outputs: list[subprocess.CompletedProcess[str]]


def _environ() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    out.update(ENV_CANARIES, PYTHONUNBUFFERED="1")
    return out


def _hfwizard(*args: str, state: Path | None, cwd: Path, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    where = ["--state-dir", str(state)] if state is not None else []
    return subprocess.run([sys.executable, "-m", "hfwizard", *args, *where], cwd=cwd,
                          env=_environ(), capture_output=True, text=True, timeout=timeout)


def _write_profile(folder: Path, kubeconfig: Path, url: str, pg: PgServer, version: str) -> Path:
    (folder / "license.jwt").write_text(LICENSE_CANARY)
    (folder / "public.pem").write_text(PUBKEY_CANARY)
    profile = cloud_profile("aws", **{
        "metadata.name": "platform", "target.kubeconfig": str(kubeconfig), "target.context": "sandbox",
        "postgres.host": pg.host, "postgres.port": pg.port, "postgres.user": PG_CREATOR,
        "postgres.database": pg.database, "postgres.sslmode": "disable", "postgres.password": "env:HF_CANARY_PG",
        "postgres.caCert": None, "charts.repository": url, "charts.operatorRepository": url,
        "platform.version": version,
        "platform.license.jwt": "file:license.jwt", "platform.license.publicKey": "file:public.pem",
        "install.stallSeconds": 120, "install.timeoutSeconds": 600, "install.maxParallel": 4})
    data = profile.model_dump(by_alias=True, exclude_none=True, mode="json")
    path = folder / "platform.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _drop_databases(pg: PgServer) -> None:
    with psycopg.connect(**pg.conninfo(), autocommit=True) as conn:
        for name in load_catalog().databases:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, pg17: PgServer) -> Iterator[Installed]:
    """The older catalog (2025.11) installed once for the module, from the loopback repository."""
    folder = tmp_path_factory.mktemp("platform")
    _drop_databases(pg17)
    cluster = ClusterThread(controllers=True, ready_delay=0.05, step_delay=0.0).start()
    try:
        cluster.call(lambda c: c.seed_default(workers=12, cpu="16", memory="32Gi", cloud="eks", gpu_nodes=6,
                                              ingress_classes=("alb",)))
        kubeconfig = cluster.write_kubeconfig(folder / "kubeconfig")
        with serve(CHARTS) as url:
            profile = _write_profile(folder, kubeconfig, url, pg17, "2025.11")
            done = _hfwizard("install", "--profile", str(profile), "--json", "--yes", "--skip-preflight",
                             state=folder / "state", cwd=folder)
            assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
            yield Installed(cluster, folder / "state", folder, profile, url, [done])
    finally:
        cluster.stop()
        _drop_databases(pg17)


def _secrets(cluster: ClusterThread) -> list[dict[str, Any]]:
    return list(cluster.cluster.emulator.list_objects("v1", "Secret", NS))  # type: ignore[union-attr]


def _release_records(cluster: ClusterThread) -> dict[str, str]:
    """Every Helm release record, decoded (base64, base64, gzip) to its JSON text."""
    out = {}
    for obj in _secrets(cluster):
        labels = obj["metadata"].get("labels") or {}
        if labels.get("owner") == "helm":
            raw = base64.b64decode(base64.b64decode(obj["data"]["release"]))
            out[obj["metadata"]["name"]] = gzip.decompress(raw).decode()
    return out


def _deployed(cluster: ClusterThread) -> dict[str, tuple[int, str, str]]:
    """release -> (latest revision, its status, its chart version)."""
    latest: dict[str, tuple[int, str, str]] = {}
    for text in _release_records(cluster).values():
        rel = json.loads(text)
        rev = int(rel["version"])
        if rel["name"] not in latest or rev > latest[rel["name"]][0]:
            latest[rel["name"]] = (rev, rel["info"]["status"], rel["chart"]["metadata"]["version"])
    return latest


def _files_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*")
                     if p.is_file() and p.suffix != ".tgz")


def _generated(cluster: ClusterThread) -> dict[str, dict[str, str]]:
    names = {"highflame-platform-secrets", "highflame-auth-keys", "highflame-oauth-keys", "highflame-signing-keys",
             "clickhouse-secrets"}
    return {o["metadata"]["name"]: o["data"] for o in _secrets(cluster) if o["metadata"]["name"] in names}


def test_every_release_deployed_and_every_deployment_ready(installed: Installed) -> None:
    catalog = load_catalog("2025.11")
    releases = _deployed(installed.cluster)
    assert len(catalog.services) == 19
    # Every service of the catalog, and the ClickHouse operator its services' database runs through.
    assert set(releases) == {catalog.release_name(s) for s in catalog.services} | {"clickhouse-operator"}
    assert all(status == "deployed" for _, status, _ in releases.values()), releases
    emu = installed.cluster.cluster.emulator  # type: ignore[union-attr]
    deployments = emu.list_objects("apps/v1", "Deployment", NS)
    assert len(deployments) >= 19
    for d in deployments:
        want = d["spec"].get("replicas", 1)
        assert (d.get("status") or {}).get("readyReplicas", 0) >= want, d["metadata"]["name"]
    evs = events(installed.outputs[0].stdout)
    started = {e["step_id"] for e in evs if e["event"] == "step_started"}
    assert {f"helm/{name}" for name in releases} <= started


def test_canaries_only_in_their_secrets(installed: Installed) -> None:
    records = _release_records(installed.cluster)
    assert records
    plain_secrets = {o["metadata"]["name"]: "\n".join(base64.b64decode(v).decode("utf-8", "replace")
                                                      for v in (o.get("data") or {}).values())
                     for o in _secrets(installed.cluster) if (o["metadata"].get("labels") or {}).get("owner") != "helm"}
    render = installed.folder / "rendered"
    rendered = _hfwizard("render", "--profile", str(installed.profile), "--out", str(render),
                         state=None, cwd=installed.folder)
    assert rendered.returncode == 0, rendered.stderr
    outputs = "".join(p.stdout + p.stderr for p in [*installed.outputs, rendered])
    elsewhere = {"release records": "\n".join(records.values()), "state dir": _files_text(installed.state),
                 "rendered files": _files_text(render), "output": outputs}
    for key, canary in ALL_CANARIES.items():
        for where, text in elsewhere.items():
            assert canary not in text, f"{key} leaked into {where}"
        holders = [name for name, text in plain_secrets.items() if canary in text]
        assert holders, f"{key} reached no Secret"
        if key in HOMES:
            assert HOMES[key] in holders
    # Each service reads its secrets from its own env Secret, named in its values, never their content.
    with_env = [text for name, text in records.items() if f"{name.split('.')[4]}-env" in plain_secrets]
    assert with_env and all("additionalEnvFrom" in text for text in with_env)


def test_databases_exist_and_a_second_install_changes_nothing(installed: Installed, pg17: PgServer) -> None:
    names = load_catalog().databases
    with psycopg.connect(**pg17.conninfo()) as conn:
        have = {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)",
                                           (names,)).fetchall()}
    assert have == set(names)
    before = {n: v for n, v in _deployed(installed.cluster).items()}
    generated = _generated(installed.cluster)
    again = _hfwizard("install", "--profile", str(installed.profile), "--json", "--yes", "--skip-preflight",
                      state=installed.state, cwd=installed.folder)
    installed.outputs.append(again)
    assert again.returncode == 0, again.stderr[-3000:]
    db = [e for e in events(again.stdout) if e.get("step_id") == "databases" and e["event"] == "step_finished"]
    assert db and ("0 created" in db[-1]["detail"] or db[-1]["status"] == "skipped"), db
    assert _generated(installed.cluster) == generated
    assert {n: v[2] for n, v in _deployed(installed.cluster).items()} == {n: v[2] for n, v in before.items()}


def test_upgrade_killed_then_resumed_ends_on_the_newer_catalog(installed: Installed) -> None:
    generated = _generated(installed.cluster)
    assert len(generated) == 5
    text = installed.profile.read_text().replace("version: '2025.11'", "version: '2026.02'")
    assert "2026.02" in text
    installed.profile.write_text(text)
    environ = _environ()
    environ["HFWIZARD_TEST_KILL_AT"] = "helm/highflame-admin:started"  # flag and authn are upgraded by then
    proc = subprocess.Popen([sys.executable, "-m", "hfwizard", "install", "--profile", str(installed.profile),
                             "--json", "--yes", "--skip-preflight", "--state-dir", str(installed.state)],
                            cwd=installed.folder, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out, err = proc.communicate(timeout=400)
    installed.outputs.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    half = {v[2] for v in _deployed(installed.cluster).values()}
    assert "1.0.3" in half and "1.0.2" in half, half  # killed part-way: some upgraded, some not
    time.sleep(0.2)
    resumed = _hfwizard("resume", "--json", "--yes", "--replan", state=installed.state, cwd=installed.folder)
    installed.outputs.append(resumed)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    catalog = load_catalog("2026.02")
    after = _deployed(installed.cluster)
    assert set(after) == {catalog.release_name(s) for s in catalog.services} | {"clickhouse-operator"}
    op_events = [(e["event"], e.get("detail") or e.get("error") or e.get("line", "")[:200])
                 for e in events(resumed.stdout) if e.get("step_id") == "helm/clickhouse-operator"]
    assert after.pop("clickhouse-operator")[1:] == ("deployed", catalog.clickhouse_operator.version), op_events
    for name, (_, status, version) in after.items():
        service = next(s for s in catalog.services if catalog.release_name(s) == name)
        assert status == "deployed" and version == catalog.chart_pin(service).version, (name, after[name])
    assert _generated(installed.cluster) == generated
