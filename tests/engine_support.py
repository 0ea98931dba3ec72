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

ROOT = Path(__file__).resolve().parent.parent

# Canary values planted through env: and file: references: they must reach the Secrets and
# nowhere else (journal, logs, state files, stdout, stderr).
CANARIES = {
    "HFW_CANARY_PG": "canary-pg-7f3a91c2",
    "HFW_CANARY_CLERK": "sk_test_canary-clerk-55b0e1",
    "HFW_CANARY_OPENAI": "canary-openai-c0ffee42",
    "HFW_CANARY_PULL": "canary-pull-token-9d8e7f",
}
FILE_CANARY = "canary-redis-from-file-31337"


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


def write_profile(folder: Path, kubeconfig: Path, *, name: str = "canary", extra: str = "",
                  stall: int = 60, tls: bool = True, modules: str = "") -> Path:
    """A profile using every kind of secret reference the engine resolves, and TLS at the ingress."""
    (folder / "redis-password").write_text(FILE_CANARY + "\n")
    (folder / "redis-password").chmod(0o600)
    (folder / "tls.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIBcanarycert\n-----END CERTIFICATE-----\n")
    (folder / "tls.key").write_text("-----BEGIN PRIVATE KEY-----\nMIIBcanarykey\n-----END PRIVATE KEY-----\n")
    tls_block = ("    certificate: file:tls.crt\n    privateKey: file:tls.key\n" if tls else "    enabled: false\n")
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
  host: pg.example.internal
  password: env:HFW_CANARY_PG
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
platform:
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
            if kind == "Service":  # cluster IPs are allocated afresh by the API server
                clean["spec"] = {k: v for k, v in clean["spec"].items() if k not in ("clusterIP", "clusterIPs")
                                 or v == "None"}
            if kind == "Secret" and meta["name"].endswith("clickhouse-auth"):
                clean["data"] = sorted(clean.get("data") or {})
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
        for value in [*CANARIES.values(), FILE_CANARY]:
            assert value not in text, f"a secret value leaked into {where}"


def assert_tree_clean(folder: Path) -> None:
    """No file under `folder` (journal, logs, state, profile copies) holds a canary."""
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for value in [*CANARIES.values(), FILE_CANARY]:
                assert value.encode() not in data, f"a secret value leaked into {path}"
