"""The support bundle: collectors under timeouts, and a bundle of an emulated cluster with canaries
behind every secret reference, in events, container states and container logs, none readable after."""

from __future__ import annotations

import base64
import datetime
import json
import secrets as pysecrets
import stat
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from kubernetes import client, config
from ruamel.yaml import YAML

from hfwizard.daytwo.bundle import INDEX_FILE, Collected, Collector, Outcome, write_support_bundle
from hfwizard.daytwo.collectors import (
    helm_history_collector,
    install_dir_collector,
    json_collector,
    kubernetes_collectors,
)
from hfwizard.daytwo.redact import Redactor
from hfwizard.daytwo.sources import cluster_secret_values, profile_secret_values
from hfwizard.daytwo.support import (
    history_from_backend,
    releases_from_journal,
    support_bundle,
    support_bundle_after_failure,
)
from hfwizard.sandbox.emulator import ClusterThread
from hfwizard.sandbox.emulator.controllers.logs import LOG_ANNOTATION
from tests.daytwo_support import assert_no_leak
from tests.engine_support import CANARIES, FILE_CANARY, write_profile

NS = "highflame"
K8S_CANARY = "canary-k8s-ref-0b5e77d1"  # behind a k8s: reference, read in the cluster
ENV_LITERAL = "unlisted-env-literal-4417aa"  # in a pod spec, known to no one: specs stay out of bundles


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_a_hanging_and_a_failing_collector_are_listed_and_the_bundle_completes(tmp_path: Path) -> None:
    release = threading.Event()

    def hangs() -> dict[str, bytes]:
        release.wait(30)
        return {"late.txt": b"too late"}

    def fails() -> dict[str, bytes]:
        raise RuntimeError("the cluster is unreachable\nsecond line with detail")

    collectors = [
        Collector("first", lambda: {"a.txt": "hello", "../../escape.txt": b"kept inside"}),
        Collector("hangs", hangs),
        Collector("fails", fails),
        Collector("partial", lambda: Collected({"b.txt": b"some"}, ["pod-x/main.log: (403) Forbidden"])),
        Collector("slow-but-allowed", lambda: (time.sleep(0.8), {"c.txt": b"done"})[1], timeout=5),
    ]
    out = tmp_path / "bundles" / "support.tar.gz"
    started = time.monotonic()
    report = write_support_bundle(out, collectors, Redactor(), timeout_per_collector=0.5, max_parallel=2)
    elapsed = time.monotonic() - started
    release.set()
    assert elapsed < 5, "the hanging collector was left behind at its deadline"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in out.parent.iterdir()] == ["support.tar.gz"], "no temporary file left"
    members = _members(out)
    assert set(members) == {"support/collectors.json", "support/first/a.txt", "support/first/escape.txt",
                            "support/partial/b.txt", "support/slow-but-allowed/c.txt"}
    index = json.loads(members["support/collectors.json"])
    outcome = {c["name"]: (c["outcome"], c["error"]) for c in index["collectors"]}
    assert outcome["first"] == ("ok", "")
    assert outcome["hangs"] == ("timed_out", "no answer within 0.5 s; left behind")
    assert outcome["fails"] == ("failed", "RuntimeError: the cluster is unreachable")
    assert outcome["partial"][0] == "partial" and outcome["slow-but-allowed"][0] == "ok"
    assert [c["problems"] for c in index["collectors"] if c["name"] == "partial"] == [
        ["pod-x/main.log: (403) Forbidden"]]
    assert {r.name for r in report.failed} == {"hangs", "fails"}
    assert report.results[1].outcome is Outcome.TIMED_OUT


def test_masking_covers_files_names_and_errors(tmp_path: Path) -> None:
    canary = CANARIES["HFW_CANARY_PG"]

    def fails() -> dict[str, bytes]:
        raise ValueError(f"could not log in with {canary}")

    collectors = [Collector("files", lambda: {f"{canary}.txt": f"password is {canary}"}), Collector("fails", fails)]
    out = tmp_path / "b.tgz"
    write_support_bundle(out, collectors, Redactor([canary]), timeout_per_collector=5)
    for name, data in _members(out).items():
        assert_no_leak(name.encode() + b"\n" + data, [canary], name)


# ---- a bundle of an emulated cluster ----------------------------------------------------------


def _b64(data: dict[str, str]) -> dict[str, str]:
    # As `data`: the emulator does not fold `stringData` into `data` as a real API server does.
    return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}


class ObjectForLogApiClient(client.ApiClient):
    """A server without log support answers a log request with the Pod object (kmock did): log requests
    go to the pod's own URL here, so the emulator answers that way."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method == "GET" and url.endswith("/log"):
            url = url.removesuffix("/log")
            kwargs["query_params"] = []
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def seeded(cluster: ClusterThread, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        dict[str, Any]]:
    """The install's namespace with hfwizard's Secrets (one generated password), a customer Secret behind
    a k8s: reference, a failing two-container Deployment whose containers log every canary (planted through
    the emulator), and an install folder with a profile."""
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    generated = pysecrets.token_urlsafe(32)
    cluster.call(lambda c: c.add_namespace(NS))
    api = config.new_client_from_config(str(kubeconfig))
    core = client.CoreV1Api(api)
    managed = {"app.kubernetes.io/managed-by": "hfwizard"}
    core.create_namespaced_secret(NS, {"metadata": {"name": "highflame-clickhouse-auth", "labels": managed},
                                       "data": _b64({"password": generated})})
    docker = json.dumps({"auths": {"ghcr.io": {"username": "robot", "auth": base64.b64encode(
        f"robot:{CANARIES['HFW_CANARY_PULL']}".encode()).decode()}}})
    core.create_namespaced_secret(NS, {"metadata": {"name": "highflame-pull", "labels": managed},
                                       "type": "kubernetes.io/dockerconfigjson",
                                       "data": _b64({".dockerconfigjson": docker})})
    core.create_namespaced_secret(NS, {"metadata": {"name": "customer-llm"},
                                       "data": _b64({"api-key": K8S_CANARY, "org": "acme-research"})})
    release_data = base64.b64encode(json.dumps({"config": {"token": K8S_CANARY}}).encode()).decode()
    core.create_namespaced_secret(NS, {
        "metadata": {"name": "sh.helm.release.v1.gateway.v1",
                     "labels": {"owner": "helm", "name": "gateway", "version": "1", "status": "failed"}},
        "type": "helm.sh/release.v1", "data": {"release": base64.b64encode(release_data.encode()).decode()}})
    core.create_namespaced_event(NS, {
        "metadata": {"name": "gateway.leak"}, "type": "Warning", "reason": "Unhealthy",
        "involvedObject": {"kind": "Deployment", "name": "gateway", "namespace": NS},
        "message": f"readiness probe sent header X-Api-Key: {K8S_CANARY}"})
    cluster.controllers.fail("gateway", NS, reason="CrashLoopBackOff",
                             message=f"dial postgres: password authentication failed ({CANARIES['HFW_CANARY_PG']})")
    container = {"envFrom": [{"secretRef": {"name": "highflame-clickhouse-auth"}}],
                 "env": [{"name": "DEBUG_FLAG", "value": ENV_LITERAL}]}
    # What the services would print, planted in every container's log by the emulator's player.
    planted = {LOG_ANNOTATION: "\n".join(_app_log_lines(generated))}
    client.AppsV1Api(api).create_namespaced_deployment(NS, {
        "metadata": {"name": "gateway"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "gateway"}},
                 "template": {"metadata": {"labels": {"app": "gateway"}, "annotations": planted},
                              "spec": {"containers": [
                     {"name": "gateway", "image": "ghcr.io/highflame/gateway:1.2.3", **container},
                     {"name": "proxy", "image": "ghcr.io/highflame/proxy:1.2.3", **container}]}}}})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _crashed(core.list_namespaced_pod(NS).items):
        time.sleep(0.05)

    install = tmp_path / "state" / "installs" / "canary"
    install.mkdir(parents=True)
    write_profile(install, kubeconfig)
    (install / "journal.jsonl").write_text(
        json.dumps({"event": "install_started", "profile": {"postgres": {"password": "env:HFW_CANARY_PG"}}}) + "\n"
        + json.dumps({"event": "step_failed", "step": "helm/gateway",
                      "error": f"values leaked: openai={CANARIES['HFW_CANARY_OPENAI']}"}) + "\n")
    (install / "install.log").write_text(
        f"redis auth {base64.b64encode(('default:' + FILE_CANARY).encode()).decode()}\n"
        f"GET /callback?secret={quote(CANARIES['HFW_CANARY_CLERK'], safe='')}\n")
    (install / "kubeconfig").write_text("users: [{user: {token: not-for-the-bundle}}]\n")
    (install / "cluster-state.json").write_text('{"secrets": "not-for-the-bundle"}')
    yield {"api": api, "install": install, "generated": generated, "kubeconfig": kubeconfig}


def _app_log_lines(generated: str) -> list[str]:
    """Log lines carrying every canary in the forms a service might print them."""
    pg, clerk = CANARIES["HFW_CANARY_PG"], CANARIES["HFW_CANARY_CLERK"]
    wrapped = base64.b64encode(json.dumps({"user": "hf", "password": pg, "n": 1}).encode()).decode()
    return [
        f"connecting to clickhouse with password={generated}",
        f"config blob {wrapped}",
        f"clerk callback ?key={quote(clerk, safe='')}&next=%2F",
        "settings " + json.dumps({"openai": CANARIES["HFW_CANARY_OPENAI"], "s": "a/b\"c"}),
        f"loaded key for {K8S_CANARY[:6]}... full={K8S_CANARY}",
        "pull auth " + base64.urlsafe_b64encode(f"robot:{CANARIES['HFW_CANARY_PULL']}".encode()).decode(),
        "ready to serve",
    ]


def _crashed(pods: list[Any]) -> bool:
    """Both pods' containers have run and crashed once (their logs are written)."""
    statuses = [cs for p in pods for cs in p.status.container_statuses or []]
    return len(statuses) == 4 and all(cs.last_state and cs.last_state.terminated for cs in statuses)


def test_bundle_of_an_emulated_cluster_holds_no_canary(seeded: dict[str, Any], tmp_path: Path) -> None:
    install, generated = seeded["install"], seeded["generated"]
    document = YAML(typ="safe").load((install / "profile.yaml").read_text())
    document["clerk"]["extraKey"] = "k8s:customer-llm/api-key"
    from_profile = profile_secret_values(document, base_dir=install)
    assert from_profile.unresolved == [] and from_profile.k8s_refs == ["k8s:customer-llm/api-key"]
    values = from_profile.values | cluster_secret_values(seeded["api"], NS, k8s_refs=from_profile.k8s_refs)
    assert {generated, K8S_CANARY, FILE_CANARY, *CANARIES.values()} <= values
    assert "acme-research" not in values, "a Secret's plain keys stay readable"

    history = {"gateway": [{"revision": 1, "status": "failed",
                            "description": f"Upgrade failed: token={CANARIES['HFW_CANARY_OPENAI']}"}]}
    collectors = [
        install_dir_collector(install),
        json_collector("preflight", "preflight.json", lambda: [
            {"check": "postgres/auth", "status": "failed",
             "message": f"login refused for password {CANARIES['HFW_CANARY_PG']}"}]),
        helm_history_collector(["gateway", "missing"], lambda r: history[r]),
        # Each container's log has 10 lines: the tail of 9 leaves out the first ("starting ...").
        *kubernetes_collectors(seeded["api"], NS, tail_lines=9),
    ]
    out = tmp_path / "out" / "hfwizard-support-canary.tar.gz"
    report = write_support_bundle(out, collectors, Redactor(values), timeout_per_collector=20,
                                  info={"install": "canary"})
    members = _members(out)
    scanned = [*CANARIES.values(), FILE_CANARY, K8S_CANARY, generated, ENV_LITERAL, "MIIBcanarykey"]
    for name, data in members.items():
        assert_no_leak(name.encode() + b"\n" + data, scanned, name)

    top = "hfwizard-support-canary/"
    outcome = {r.name: r.outcome for r in report.results}
    assert outcome == {"install": Outcome.OK, "preflight": Outcome.OK, "helm": Outcome.PARTIAL,
                       "kubernetes/version": Outcome.OK, "kubernetes/nodes": Outcome.OK,
                       "kubernetes/pods": Outcome.OK, "kubernetes/events": Outcome.OK,
                       "kubernetes/logs": Outcome.OK}
    assert sorted(n.removeprefix(top) for n in members if n.startswith(top + "install/")) == [
        "install/install.log", "install/journal.jsonl", "install/profile.yaml"]
    assert b"password: env:HFW_CANARY_PG" in members[top + "install/profile.yaml"], "references stay readable"
    version = json.loads(members[top + "kubernetes/version/version.json"])
    assert version["gitVersion"] == "v1.32.3"
    nodes = json.loads(members[top + "kubernetes/nodes/nodes.json"])
    assert len(nodes) == 6 and nodes[0]["roles"] == ["worker"]
    assert [c["status"] for c in nodes[0]["conditions"] if c["type"] == "Ready"] == ["True"]
    pods = json.loads(members[top + "kubernetes/pods/pods.json"])
    assert sorted(p["name"] for p in pods) == ["gateway-0", "gateway-1"]
    assert [c["restarts"] for c in pods[0]["containers"]] == [5, 5]
    assert "[REDACTED]" in pods[0]["containers"][0]["state"]["waiting"]["message"]
    assert {c["type"]: c["status"] for c in pods[0]["conditions"]}["Ready"] == "False"
    events = json.loads(members[top + "kubernetes/events/events.json"])
    assert {e["reason"] for e in events} == {"BackOff", "Unhealthy"}
    logs = sorted(n.removeprefix(top + "kubernetes/logs/") for n in members if "/logs/" in n)
    assert logs == sorted(f"gateway-{i}/{c}{p}.log" for i in range(2) for c in ("gateway", "proxy")
                          for p in ("", ".previous"))
    for name in logs:  # the emulator's player wrote them; the collector read them through the API
        log = members[top + "kubernetes/logs/" + name].decode()
        lines = log.splitlines()
        assert len(lines) == 9 and not any("starting " in line for line in lines), "a tail, not the whole log"
        assert lines[0].split(" ", 1)[1] == "environment: 1 variables, 1 sources", "timestamped, as asked"
        assert lines[-2].endswith(" ready to serve")
        assert lines[-1].endswith(" fatal: dial postgres: password authentication failed ([REDACTED]) (exit code 1)")
        assert log.count("[REDACTED]") >= 7, log
    assert json.loads(members[top + "helm/gateway.json"])[0]["status"] == "failed"
    index = json.loads(members[top + INDEX_FILE])
    assert index["install"] == "canary"
    assert [c["problems"] for c in index["collectors"] if c["name"] == "helm"] == [["missing: KeyError: 'missing'"]]


def test_a_server_without_log_support_is_named_not_filed(seeded: dict[str, Any], tmp_path: Path) -> None:
    """A server answering a log request with the Pod object (kmock did): the log collector names each
    container as not read instead of filing the object as its log."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(seeded["kubeconfig"]), client_configuration=configuration)
    logs = [c for c in kubernetes_collectors(ObjectForLogApiClient(configuration), NS) if c.name == "kubernetes/logs"]
    out = tmp_path / "b.tar.gz"
    report = write_support_bundle(out, logs, Redactor(), timeout_per_collector=20)
    assert report.results[0].outcome is Outcome.PARTIAL
    assert all("no log support" in p for p in report.results[0].problems)
    assert len(report.results[0].problems) == 8
    assert [n for n in _members(out) if "/logs/" in n] == []


class _AsyncHelm:
    """Stands in for the Helm backend's coroutine `history(release, namespace)`."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def history(self, release: str, namespace: str) -> list[dict[str, Any]]:
        self.asked.append((release, namespace))
        return [{"revision": 1, "status": "deployed", "description": "Install complete"}]


def test_support_bundle_in_one_call(seeded: dict[str, Any]) -> None:
    install, generated = seeded["install"], seeded["generated"]
    with (install / "journal.jsonl").open("a") as fh:
        fh.write(json.dumps({"event": "step_finished", "step": "helm/gateway", "release": "gateway"}) + "\n")
        fh.write('{"event": "step_finished", "release": "torn')
    assert releases_from_journal(install / "journal.jsonl") == ["gateway"]
    document = YAML(typ="safe").load((install / "profile.yaml").read_text())
    helm = _AsyncHelm()
    report = support_bundle(install, profile_document=document,
                            api_client=seeded["api"],
                            namespace=NS, releases=["clickhouse"], history=history_from_backend(helm, NS),
                            preflight=lambda: {"checks": []}, reason="install failed",
                            now=datetime.datetime(2026, 11, 30, 4, 5, 6, tzinfo=datetime.UTC))
    assert report.path == install / "support" / "hfwizard-support-canary-20261130T040506Z.tar.gz"
    assert stat.S_IMODE(report.path.stat().st_mode) == 0o600 and not report.failed
    assert sorted(helm.asked) == [("clickhouse", NS), ("gateway", NS)]
    members = _members(report.path)
    for name, data in members.items():
        assert_no_leak(name.encode() + b"\n" + data, [*CANARIES.values(), FILE_CANARY, generated], name)
    top = "hfwizard-support-canary-20261130T040506Z/"
    records = json.loads(members[top + "helm-records/release-records.json"])
    assert records == [{"release": "gateway", "revision": 1, "status": "failed", "modifiedAt": None,
                        "record": "sh.helm.release.v1.gateway.v1"}]
    index = json.loads(members[top + "collectors.json"])
    assert index["reason"] == "install failed" and index["masking_problems"] == []
    assert {c["name"] for c in index["collectors"]} >= {"install", "preflight", "helm", "kubernetes/logs"}


def test_bundle_after_a_failure_without_a_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install = tmp_path / "installs" / "canary"
    install.mkdir(parents=True)
    write_profile(install, tmp_path / "kubeconfig")
    monkeypatch.delenv("HFW_CANARY_PG", raising=False)  # a reference that no longer resolves
    for name in ("HFW_CANARY_CLERK", "HFW_CANARY_OPENAI", "HFW_CANARY_PULL", "HFW_CANARY_PUBKEY"):
        monkeypatch.setenv(name, CANARIES[name])
    (install / "install.log").write_text(f"redis said: bad password {FILE_CANARY}\n")
    document = YAML(typ="safe").load((install / "profile.yaml").read_text())
    path, line = support_bundle_after_failure(install, profile_document=document,
                                              cluster_error="connection refused by 127.0.0.1:1")
    assert path is not None and path.exists()
    assert line == f"support bundle: {path} (kubernetes not collected)"
    members = _members(path)
    for name, data in members.items():
        assert_no_leak(data, [FILE_CANARY], name)
    index = json.loads(next(v for k, v in members.items() if k.endswith("/collectors.json")))
    kube = next(c for c in index["collectors"] if c["name"] == "kubernetes")
    assert kube["outcome"] == "failed" and kube["error"] == "ConnectionError: connection refused by 127.0.0.1:1"
    assert index["masking_problems"] == [
        "secret reference env:HFW_CANARY_PG: environment variable HFW_CANARY_PG is not set"]
    # Under a file, not a folder: no one (root included) can write there.
    path, line = support_bundle_after_failure(install, out_path=install / "profile.yaml" / "sub" / "b.tgz")
    assert path is None and line.startswith("no support bundle could be written: NotADirectoryError")
