"""End to end: `hfwizard install` puts the platform (Highflame's charts) into an emulated cluster with real Helm."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

from hfwizard.engine.engine import Engine, EngineOptions
from hfwizard.events import InstallFinished, StepFailed, StepProgress
from hfwizard.profile_io import load_profile
from tests.engine_support import (
    CANARIES,
    FILE_CANARY,
    LICENSE_CANARY,
    assert_no_canary,
    assert_tree_clean,
    emulated_cluster,
    events,
    hfwizard,
    journal_records,
    release_revisions,
    write_profile,
)
from tests.fixtures.servers import PgServer

CORE = ["collector", "flag", "authz", "authn", "admin", "shield", "cerberus", "firehog", "discovery", "forge",
        "studio"]
CLICKHOUSE = ["clickhouse/crds", "clickhouse/secrets", "helm/clickhouse-operator", "clickhouse/identity",
              "clickhouse/keeper", "clickhouse/server", "clickhouse/setup", "clickhouse/backup"]


def _secret(emu: object, name: str) -> dict[str, str]:
    obj = emu.get_object("v1", "Secret", "highflame", name)  # type: ignore[attr-defined]
    assert obj is not None, f"Secret {name} missing"
    return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}


def test_install_end_to_end_with_canary_secrets(tmp_path: Path, pg17: PgServer) -> None:
    """The Kubernetes API is emulated (kmock plus our shim on loopback, with a controller player making
    workloads ready), because no real API server can run here; Helm is real (Go SDK). Installs the
    platform's core services from Highflame's charts through the engine and CLI, then checks the objects
    against the profile and that the planted secrets reach their Secrets and nothing else."""
    state = tmp_path / "state"
    with emulated_cluster(ready_delay=0.1) as cluster:
        kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        profile = write_profile(tmp_path, kc, pg=pg17)
        run = hfwizard("install", "--profile", str(profile), "--yes", "--json", "--skip-preflight",
                       state=state, cwd=tmp_path, timeout=300)
        assert run.returncode == 0, run.stderr + run.stdout[-3000:]
        evs = events(run.stdout)
        assert evs[-1]["event"] == "done" and evs[-1]["exit_code"] == 0
        finished = {e["step_id"] for e in evs if e["event"] == "step_finished"}
        assert finished == {"charts", "namespace", "secrets/generated", "secrets/keys", "secrets/prerequisites",
                            "secrets/env", "databases", "verify", *CLICKHOUSE, *(f"helm/highflame-{s}" for s in CORE)}
        assert any(e["event"] == "progress" and e["total"] > 0 for e in evs)
        assert any(e["event"] == "log" and e["source"] == "helm" for e in evs), "Helm's own log lines come through"

        emu = cluster.cluster.emulator  # type: ignore[union-attr]
        for svc in CORE:
            name = f"highflame-{svc}"
            dep = emu.get_object("apps/v1", "Deployment", "highflame", name)
            assert dep is not None, name
            pod = dep["spec"]["template"]["spec"]
            assert pod["imagePullSecrets"] == [{"name": "highflame-registry-secret"}]
            container = pod["containers"][0]
            assert container["image"].endswith(":1.2.3")
            assert all("value" not in e or "CANARY" not in str(e["value"]).upper() for e in container.get("env", []))
            assert emu.get_object("v1", "Service", "highflame", name) is not None
            env_from = [src["secretRef"]["name"] for src in container.get("envFrom") or [] if "secretRef" in src]
            if emu.get_object("v1", "Secret", "highflame", f"{name}-env") is not None:
                assert f"{name}-env" in env_from, name
                annotations = dep["spec"]["template"]["metadata"].get("annotations") or {}
                assert "hfwizard.io/env-checksum" in annotations, name
        # --- ClickHouse: the operator's installation (a volume per replica), its Service, backups to the bucket
        chi = emu.get_object("clickhouse.altinity.com/v1", "ClickHouseInstallation", "highflame", "ch")
        assert chi["status"]["status"] == "Completed" and chi["status"]["hostsCompleted"] == 2
        claim = chi["spec"]["templates"]["volumeClaimTemplates"][0]
        assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
        assert len(emu.list_objects("v1", "PersistentVolumeClaim", "highflame")) == 3  # 2 servers, 1 Keeper
        assert emu.get_object("v1", "Service", "highflame", "clickhouse-ch") is not None
        assert "bucket: highflame-backups" in _secret(emu, "clickhouse-backup-config")["backup-config.yml"]
        cron = emu.get_object("batch/v1", "CronJob", "highflame", "clickhouse-backup")
        benv = {e["name"]: e for e in cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert benv["BACKUP_LOCATION"]["value"] == "remote"
        # --- the Secrets hold the resolved values
        assert _secret(emu, "highflame-license") == {"license.jwt": LICENSE_CANARY,
                                                     "public.pem": CANARIES["HFW_CANARY_PUBKEY"]}
        pull = json.loads(_secret(emu, "highflame-registry-secret")[".dockerconfigjson"])
        auth = pull["auths"]["ghcr.io"]
        assert auth["password"] == CANARIES["HFW_CANARY_PULL"] and auth["username"] == "robot"
        assert base64.b64decode(auth["auth"]).decode() == f"robot:{CANARIES['HFW_CANARY_PULL']}"
        env_text = "\n".join(v for s in CORE if emu.get_object("v1", "Secret", "highflame", f"highflame-{s}-env")
                             for v in _secret(emu, f"highflame-{s}-env").values())
        for value in (CANARIES["HFW_CANARY_PG"], CANARIES["HFW_CANARY_CLERK"], FILE_CANARY):
            assert value in env_text
        generated = _secret(emu, "highflame-platform-secrets")
        assert len(generated["internal-service-secret"]) == 64
        for name in ("highflame-license", "highflame-registry-secret", "highflame-platform-secrets",
                     "clickhouse-secrets"):
            labels = emu.get_object("v1", "Secret", "highflame", name)["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "hfwizard"
        # One ClickHouse admin password: the generated platform key the collector reads, copied.
        password = _secret(emu, "clickhouse-secrets")["CH_ADMIN_PASSWORD"]
        assert password == generated["clickhouse-admin-password"] and len(password) >= 32
        assert _secret(emu, "highflame-collector-env")["CLICKHOUSE_PASSWORD"] == password
        assert _secret(emu, "clickhouse-secrets")["CH_READONLY_PASSWORD"] != password
        assert release_revisions(cluster)["highflame-admin"] == [(1, "deployed")]
        assert release_revisions(cluster)["clickhouse-operator"] == [(1, "deployed")]
        # --- the journal records the profile's hash and each release's revision
        recs = journal_records(state)
        started = [r for r in recs if r["event"] == "install_started"]
        assert len(started) == 1 and len(started[0]["profile_hash"]) == 64
        revs = {r["step"]: r.get("revision") for r in recs if r["event"] == "step_finished"}
        assert revs["helm/highflame-admin"] == 1 and revs["helm/clickhouse-operator"] == 1
        # --- nothing else holds a secret value
        assert_no_canary(run.stdout, run.stderr, where="the install's output")
        assert_tree_clean(state)
        assert (state / "installs" / "canary" / "profile.yaml").stat().st_mode & 0o777 == 0o600

        # A second install of the same profile is an upgrade: the generated secrets are kept.
        again = hfwizard("install", "--profile", str(profile), "--yes", "--json", "--skip-preflight",
                         state=state, cwd=tmp_path, timeout=300)
        assert again.returncode == 0, again.stderr
        assert _secret(emu, "highflame-platform-secrets") == generated
        assert release_revisions(cluster)["highflame-admin"][-1][1] == "deployed"
        assert _secret(emu, "clickhouse-secrets")["CH_ADMIN_PASSWORD"] == password

        status = hfwizard("status", "--json", state=state, cwd=tmp_path)
        assert json.loads(status.stdout.splitlines()[0])["state"] == "done"


async def test_failing_workload_shows_pod_events_then_resume_retries(tmp_path: Path, pg17: PgServer) -> None:
    """The Kubernetes API is emulated (no real API server can run here); its controller player makes the
    admin pods crash. The engine must fail the step as stalled (progress, not a fixed clock) with the
    pods' events, keep the journal consistent, and a resume after the fault is healed must finish."""
    with emulated_cluster(ready_delay=0.1) as cluster:
        kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        profile = load_profile(write_profile(tmp_path, kc, stall=5, tls=False, pg=pg17)).profile
        player = cluster.controllers

        async def crash(_: object) -> None:
            player.fail("highflame-admin", reason="CrashLoopBackOff", message="exit 1: canary boot failure")

        cluster.call(crash)
        import os

        os.environ.update(CANARIES)
        idir = tmp_path / "state" / "installs" / "canary"
        idir.mkdir(parents=True)
        engine = Engine(profile, idir, options=EngineOptions(kubeconfig=str(kc), context="sandbox",
                                                             secrets_base_dir=tmp_path, poll_interval=0.2))
        seen = [e async for e in engine.run()]
        assert engine.exit_code == 1
        failed = [e for e in seen if isinstance(e, StepFailed)]
        assert failed and failed[0].step_id == "helm/highflame-admin"
        assert "stalled" in failed[0].error or "Helm" in failed[0].error
        assert any("CrashLoopBackOff" in line for line in failed[0].pod_events), failed[0].pod_events
        assert any(isinstance(e, StepProgress) and e.step_id == "helm/highflame-admin" for e in seen)
        assert isinstance(seen[-1], InstallFinished) and seen[-1].status == "failed"
        recs = [json.loads(line) for line in (idir / "journal.jsonl").read_text().splitlines()]
        assert recs[-1]["event"] == "install_finished" and recs[-1]["status"] == "failed"

        async def heal(_: object) -> None:
            player.heal("highflame-admin")

        cluster.call(heal)
        engine2 = Engine(profile, idir, options=EngineOptions(kubeconfig=str(kc), context="sandbox",
                                                              secrets_base_dir=tmp_path, poll_interval=0.2))
        seen2 = [e async for e in engine2.run()]
        assert engine2.exit_code == 0, [e for e in seen2 if isinstance(e, StepFailed)]
        skipped = {e.step_id for e in seen2 if getattr(e, "status", "") == "skipped"}
        assert {"namespace", "secrets/env", "helm/highflame-authn", "helm/clickhouse-operator",
                "clickhouse/server"} <= skipped
        await asyncio.sleep(0)
