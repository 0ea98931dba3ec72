"""Shared helpers of the engine tests: an emulated cluster with slow controllers, a canary profile,
running `hfwizard` as a real process, and a normalised snapshot of the cluster to compare runs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hfwizard.sandbox.emulator import ClusterThread
from tests.fixtures.servers import PG_CREATOR, PG_PASSWORD
from tests.platform_support import CHARTS

ROOT = Path(__file__).resolve().parent.parent

# Canary values planted through env: and file: references: they must reach the Secrets and
# nowhere else (journal, logs, state files, stdout, stderr).
CANARIES = {
    # The PostgreSQL fixture's own password: the databases step logs in with it.
    "HFW_CANARY_PG": PG_PASSWORD,
    "HFW_CANARY_PUBKEY": "canary-license-pubkey-4e4e",
    "HFW_CANARY_CLERK": "sk_test_canary-clerk-55b0e1",
    "HFW_CANARY_OPENAI": "canary-openai-c0ffee42",
    "HFW_CANARY_PULL": "canary-pull-token-9d8e7f",
}
FILE_CANARY = "canary-redis-from-file-31337"
LICENSE_CANARY = "canary-license-jwt-from-file-2b2b"


@contextmanager
def emulated_cluster(ready_delay: float = 0.3, step_delay: float = 0.0) -> Iterator[ClusterThread]:
    """An emulated API server on loopback (6 workers, a StorageClass, IngressClass nginx) whose
    controller player turns workloads ready after `ready_delay` seconds."""
    handle = ClusterThread(controllers=True, ready_delay=ready_delay, step_delay=step_delay).start()
    try:
        handle.call(lambda c: c.seed_default(workers=6, cpu="8", memory="32Gi", ingress_classes=("nginx",)))
        yield handle
    finally:
        handle.stop()


# Modules off in the engine tests: the core services (11 releases) are enough for engine mechanics.
CORE_ONLY = ("modules:\n  guardrails: {enabled: false}\n  redTeaming: {enabled: false}\n"
             "  observability: {enabled: false}\n  mcpGateway: {enabled: false}\n")


def core_sandbox_profile(folder: Path) -> Path:
    """The bundled sandbox profile (AWS values) with the seed's modules off, written into `folder`: a
    rehearsal of the core services only (11 releases and ClickHouse instead of 19), for tests of the
    sandbox's mechanics (its lock, its state dir, kill and resume) rather than of the whole platform."""
    path = folder / "sandbox-core.yaml"
    text = (ROOT / "profiles" / "sandbox.yaml").read_text()
    assert "\nsizing:\n" in text, "profiles/sandbox.yaml changed shape: put the modules elsewhere"
    path.write_text(text.replace("\nsizing:\n", "\n" + CORE_ONLY + "sizing:\n", 1))
    return path


def write_profile(folder: Path, kubeconfig: Path, *, name: str = "canary", extra: str = "",
                  stall: int = 60, tls: bool = True, modules: str = CORE_ONLY, pg: Any = None) -> Path:
    """A profile using every kind of secret reference the engine resolves, and TLS at the ingress; the real
    platform's charts from Highflame's chart folder (a mirror), its databases on `pg` (a PgServer; a profile
    that is never installed may leave it out); the ClickHouse operator's chart from the same folder."""
    (folder / "redis-password").write_text(FILE_CANARY + "\n")
    (folder / "redis-password").chmod(0o600)
    (folder / "tls.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIBcanarycert\n-----END CERTIFICATE-----\n")
    (folder / "tls.key").write_text("-----BEGIN PRIVATE KEY-----\nMIIBcanarykey\n-----END PRIVATE KEY-----\n")
    (folder / "license.jwt").write_text(LICENSE_CANARY)
    tls_block = ("    certificate: file:tls.crt\n    privateKey: file:tls.key\n" if tls else "    enabled: false\n")
    pg_block = (f"  host: {pg.host}\n  port: {pg.port}\n  user: {PG_CREATOR}\n  database: {pg.database}\n"
                "  sslmode: disable\n" if pg is not None else "  host: pg.example.internal\n")
    text = f"""apiVersion: hfwizard/v1
kind: InstallProfile
metadata:
  name: {name}
target:
  cloud: existing
  kubeconfig: {kubeconfig}
  context: sandbox
  namespace: highflame
  release: highflame
sizing:
  preset: small
{modules}postgres:
{pg_block}  password: env:HFW_CANARY_PG
redis:
  endpoints: ["redis-0.example.internal:6379"]
  password: file:redis-password
clerk:
  publishableKey: pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA
  secretKey: env:HFW_CANARY_CLERK
clickhouse:
  storageSize: 50Gi
  replicas: 2
  backup:
    provider: s3
    bucket: highflame-backups
    region: eu-west-1
ingress:
  domain: highflame.example.test
  className: nginx
  tls:
{tls_block}images:
  registry: ghcr.io
  repository: highflame
  tag: "1.2.3"
  pullUsername: robot
  pullSecret: env:HFW_CANARY_PULL
charts:
  mirror: {CHARTS}
platform:
  license:
    jwt: file:license.jwt
    publicKey: env:HFW_CANARY_PUBKEY
  modelApiKeys:
    openai: env:HFW_CANARY_OPENAI
install:
  stallSeconds: {stall}
  timeoutSeconds: 300
{extra}"""
    path = folder / "profile.yaml"
    path.write_text(text)
    return path


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    out.update(CANARIES)
    out["PYTHONUNBUFFERED"] = "1"
    out.update(extra)
    return out


def hfwizard(*args: str, state: Path, cwd: Path, extra_env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`hfwizard ARGS` as its own process (`python -m hfwizard`), JSON events on stdout."""
    return subprocess.run([sys.executable, "-m", "hfwizard", *args, "--state-dir", str(state)],
                          cwd=cwd, env=env(**(extra_env or {})), capture_output=True, text=True, timeout=timeout)


def events(stdout: str) -> list[dict[str, Any]]:
    out = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):  # a line torn by SIGKILL
                out.append(json.loads(line))
    return out


_KINDS = [("v1", "Namespace"), ("v1", "Secret"), ("v1", "ConfigMap"), ("v1", "Service"),
          ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("policy/v1", "PodDisruptionBudget"),
          ("autoscaling/v2", "HorizontalPodAutoscaler"), ("networking.k8s.io/v1", "Ingress"),
          ("batch/v1", "CronJob")]
_GENERATED = {"highflame-platform-secrets", "highflame-auth-keys", "highflame-oauth-keys", "highflame-signing-keys",
              "clickhouse-secrets"}
CORE = ["collector", "flag", "authz", "authn", "admin", "shield", "cerberus", "firehog", "discovery", "forge",
        "studio"]
"""The core services: the releases of an engine test's profile (write_profile's modules)."""
_VOLATILE_META = {"uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
                  "selfLink", "deletionTimestamp"}


def snapshot(cluster: ClusterThread, namespace: str = "highflame") -> dict[str, Any]:
    """The platform's objects, without what differs between two equal installs (uids, versions,
    status, Helm's release records and the generated ClickHouse password's value)."""
    emu = cluster.cluster.emulator  # type: ignore[union-attr]
    out: dict[str, Any] = {}
    for api_version, kind in _KINDS:
        ns = None if kind == "Namespace" else namespace
        for obj in emu.list_objects(api_version, kind, ns):
            meta = obj["metadata"]
            if kind == "Namespace" and meta["name"] != namespace:
                continue
            if kind == "Secret" and (meta.get("labels") or {}).get("owner") == "helm":
                continue  # release records: their count is checked on its own
            clean = {k: v for k, v in obj.items() if k != "status"}
            clean["metadata"] = {k: v for k, v in meta.items() if k not in _VOLATILE_META}
            if meta.get("ownerReferences"):  # the owner's uid differs between two equal installs
                clean["metadata"]["ownerReferences"] = [{k: v for k, v in ref.items() if k != "uid"}
                                                        for ref in meta["ownerReferences"]]
            if kind == "Service":  # cluster IPs and node ports are allocated afresh by the API server
                clean["spec"] = {k: v for k, v in clean["spec"].items() if k not in ("clusterIP", "clusterIPs")
                                 or v == "None"}
                clean["spec"]["ports"] = [{k: v for k, v in port.items() if k != "nodePort"}
                                          for port in clean["spec"].get("ports") or []]
            if kind == "Secret" and (meta["name"] in _GENERATED or meta["name"].endswith("-env")):
                clean["data"] = sorted(clean.get("data") or {})  # generated afresh by each install
            if kind == "Deployment":  # the env Secret's checksum follows the generated values
                pod_meta = clean["spec"]["template"].get("metadata") or {}
                # The chart's podRestart stamps the render time (deploymentTime) to restart pods on upgrade.
                for volatile in ("hfwizard.io/env-checksum", "deploymentTime"):
                    if volatile in (pod_meta.get("annotations") or {}):
                        pod_meta["annotations"] = {**pod_meta["annotations"], volatile: "*"}
            out[f"{kind}/{meta['name']}"] = clean
    return out


def release_revisions(cluster: ClusterThread, namespace: str = "highflame") -> dict[str, list[tuple[int, str]]]:
    emu = cluster.cluster.emulator  # type: ignore[union-attr]
    out: dict[str, list[tuple[int, str]]] = {}
    for obj in emu.list_objects("v1", "Secret", namespace):
        labels = obj["metadata"].get("labels") or {}
        if labels.get("owner") == "helm":
            out.setdefault(labels["name"], []).append((int(labels["version"]), labels["status"]))
    return {k: sorted(v) for k, v in out.items()}


def helm_statuses(cluster: ClusterThread, name: str, namespace: str = "default") -> list[str]:
    """The status label of each of Helm's records of release `name` (one per revision), as stored."""
    assert cluster.cluster is not None
    return [s["metadata"]["labels"].get("status", "")
            for s in cluster.cluster.emulator.list_objects("v1", "Secret", namespace)
            if (s["metadata"].get("labels") or {}).get("owner") == "helm"
            and s["metadata"]["labels"].get("name") == name]


def journal_records(state: Path, install: str = "canary") -> list[dict[str, Any]]:
    path = state / "installs" / install / "journal.jsonl"
    out = []
    for line in path.read_bytes().split(b"\n"):
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def assert_no_canary(*texts: str, where: str = "") -> None:
    for text in texts:
        for value in [*CANARIES.values(), FILE_CANARY, LICENSE_CANARY]:
            assert value not in text, f"a secret value leaked into {where}"


def assert_tree_clean(folder: Path) -> None:
    """No file under `folder` (journal, logs, state, profile copies) holds a canary."""
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for value in [*CANARIES.values(), FILE_CANARY, LICENSE_CANARY]:
                assert value.encode() not in data, f"a secret value leaked into {path}"


def chart_cache(install: Path, *charts: Path) -> dict[Path, tuple[str, str]]:
    """Put charts (tarballs or folders) into an install's chart cache as the charts step would (a mirror
    folder the release steps install from); returns each chart's (name, version)."""
    import hashlib
    import io
    import tarfile

    import yaml

    from hfwizard.engine.steps.charts import CHARTS_CACHE, write_cache_index
    from hfwizard.platform.charts import FetchedChart

    folder = install / "cache" / CHARTS_CACHE
    folder.mkdir(parents=True, exist_ok=True)
    fetched, out = [], {}
    for chart in charts:
        if chart.is_dir():
            meta = yaml.safe_load((chart / "Chart.yaml").read_text())
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tar:
                tar.add(chart, arcname=meta["name"])
            data = buf.getvalue()
        else:
            data = chart.read_bytes()
            with tarfile.open(chart) as tar:
                member = next(m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml"))
                meta = yaml.safe_load(tar.extractfile(member).read())  # type: ignore[union-attr]
        name, version = meta["name"], str(meta["version"])
        path = folder / f"{name}-{version}.tgz"
        path.write_bytes(data)
        fetched.append(FetchedChart(name, version, path, hashlib.sha256(data).hexdigest(), str(chart)))
        out[chart] = (name, version)
    write_cache_index(folder, fetched)
    return out
