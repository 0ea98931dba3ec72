"""`hfwizard status NAME`: the platform live from the cluster, and the DNS hand-off it repeats.

The Kubernetes API is emulated (kmock plus our shim on loopback: no real API server runs on these
machines); Helm and the charts are real (Highflame's generic and redteam charts, EKS values templates).
DNS is a loopback authoritative server (tests/test_daytwo_dns.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from hfwizard.daytwo.status import live_status
from tests import daytwo_platform as hp
from tests.engine_support import emulated_cluster, events, hfwizard
from tests.test_daytwo_dns import serving

pytestmark = pytest.mark.skipif(not hp.CHARTS.is_dir(), reason="Highflame's charts are not on this machine")

LB = "k8s-hf-alb-123456.eu-west-1.elb.amazonaws.com"
SERVICES = [("admin", "highflame-generic", "1.0.3"), ("authn", "highflame-generic", "1.0.3"),
            ("redteam", "highflame-redteam", "1.0.5")]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Three services installed into a saved install named "live" (one module-wide emulated cluster)."""
    tmp = tmp_path_factory.mktemp("status")
    with emulated_cluster(ready_delay=0.2) as cluster:
        kc = cluster.write_kubeconfig(tmp / "kubeconfig")
        prof = hp.profile("live", kc)
        inst = hp.saved_install(tmp / "state", prof)
        services = [(svc, hp.chart(name, ver), hp.service_values(svc, tag="2.4.1")) for svc, name, ver in SERVICES]
        code, seen = hp.run_engine(prof, inst, hp.plan(services))
        assert code == 0, seen[-1]
        yield {"cluster": cluster, "kc": kc, "tmp": tmp, "state": tmp / "state", "kube": hp.kube(kc)}


def test_status_reads_each_release_live(installed: dict[str, Any]) -> None:
    k = installed["kube"]
    st = live_status(k.api_client, hp.NS)
    rows = {r.release: r for r in st.releases}
    assert set(rows) == {"highflame-admin", "highflame-authn", "highflame-redteam"}
    admin = rows["highflame-admin"]
    assert (admin.chart, admin.chart_version, admin.revision, admin.helm_status) == \
        ("highflame-generic", "1.0.3", 1, "deployed")
    assert admin.images == ["ghcr.io/highflame-ai/release-highflame-admin:2.4.1"]
    assert admin.desired >= 1 and admin.ready == admin.desired and admin.healthy
    assert rows["highflame-redteam"].chart == "highflame-redteam"
    assert f"control.{hp.DOMAIN}" in st.hosts and st.load_balancer == []
    assert st.problems == []


def test_the_plain_reader_reads_what_the_client_reads(installed: dict[str, Any]) -> None:
    """`status` reads through plain HTTP when the kubeconfig's credentials are static (no client import)."""
    from dataclasses import replace

    from hfwizard.daytwo.kube_read import KubeReader, reader_for

    reader = reader_for(str(installed["kc"]), "sandbox")
    assert isinstance(reader, KubeReader)
    by_reader = live_status(reader, hp.NS)
    by_client = live_status(installed["kube"].api_client, hp.NS)
    assert len(by_reader.releases) == 3 and by_reader.problems == []
    assert replace(by_reader, seconds=0) == replace(by_client, seconds=0)
    missing = live_status(reader, "no-such-namespace")
    assert missing.releases == [] and missing.problems == []


def test_a_warning_event_is_shown_on_its_release(installed: dict[str, Any]) -> None:
    """The emulated kubelet's own warnings (no pull secret in these tests) show, and a newer one wins."""
    import datetime

    from kubernetes import client

    rows = {r.release: r for r in live_status(installed["kube"].api_client, hp.NS).releases}
    assert rows["highflame-admin"].last_warning.startswith("FailedToRetrieveImagePullSecret: "), rows
    core = client.CoreV1Api(installed["kube"].api_client)
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    core.create_namespaced_event(hp.NS, {
        "metadata": {"name": "authn-pull.1"}, "type": "Warning", "reason": "BackOff",
        "message": "Back-off pulling image", "lastTimestamp": later,
        "involvedObject": {"kind": "Pod", "name": "highflame-authn-5d9c7-abcde", "namespace": hp.NS}})
    rows = {r.release: r for r in live_status(installed["kube"].api_client, hp.NS).releases}
    assert rows["highflame-authn"].last_warning == "BackOff: Back-off pulling image"
    assert not rows["highflame-admin"].last_warning.startswith("BackOff")


def test_status_command_json_and_dns_check(installed: dict[str, Any]) -> None:
    hp.set_load_balancer(installed["kube"], LB)
    zone = {f"control.{hp.DOMAIN}": [("CNAME", LB)], LB: [("A", "203.0.113.7")]}
    with serving(zone) as ns:
        done = hfwizard("status", "live", "--json", "--nameserver", ns, state=installed["state"],
                        cwd=installed["tmp"])
    assert done.returncode == 0, done.stderr
    [report] = [e for e in events(done.stdout) if e["event"] == "status"]
    assert {r["release"] for r in report["releases"]} == {"highflame-admin", "highflame-authn", "highflame-redteam"}
    assert all(r["healthy"] for r in report["releases"])
    assert report["load_balancer"] == [LB]
    dns = {d["record"].split()[0].rstrip("."): d["status"] for d in report["dns"]}
    assert dns[f"control.{hp.DOMAIN}"] == "ok" and dns[f"auth.{hp.DOMAIN}"] == "missing"
    text = hfwizard("status", "live", "--no-dns", state=installed["state"], cwd=installed["tmp"])
    assert text.returncode == 0 and "highflame-admin" in text.stdout and f"CNAME  {LB}." in text.stdout
    assert "DNS now:" not in text.stdout


def test_status_of_an_unknown_install_is_bad_input(installed: dict[str, Any]) -> None:
    done = hfwizard("status", "nope", state=installed["state"], cwd=installed["tmp"])
    assert done.returncode == 2 and "no install named 'nope'" in done.stderr and "Traceback" not in done.stderr


def test_status_without_a_name_still_lists_the_installs(installed: dict[str, Any]) -> None:
    done = hfwizard("status", "--json", state=installed["state"], cwd=installed["tmp"])
    assert done.returncode == 0
    assert [json.loads(line)["name"] for line in done.stdout.splitlines()] == ["live"]


async def test_welcome_screen_offers_day_two_actions_for_an_installed_platform(installed: dict[str, Any]) -> None:
    """Status runs in the wizard (against the emulated cluster above); Uninstall hands over to the
    terminal: the app exits with the action and install named for the CLI to run."""
    from hfwizard.screens.app import WizardApp
    from textual.widgets import Button

    app = WizardApp(installed["state"])
    notes: list[str] = []
    async with app.run_test(size=(100, 40)) as pilot:
        app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore[method-assign]
        await pilot.pause()
        assert app.screen.query_one("#day-status", Button) is not None
        app.screen.query_one("#day-status", Button).press()
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert any("highflame-admin" in n and "Load balancer:" in n for n in notes), notes
        app.screen.query_one("#day-uninstall", Button).press()
        await pilot.pause()
    assert app.day_two == ("uninstall", "live")  # type: ignore[attr-defined]


def test_status_watch_refreshes_until_interrupted(installed: dict[str, Any]) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.engine_support import env

    proc = subprocess.Popen([sys.executable, "-m", "hfwizard", "status", "live", "--watch", "--interval", "0.5",
                             "--json", "--no-dns", "--state-dir", str(installed["state"])],
                            cwd=installed["tmp"], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    reports = []
    deadline = time.monotonic() + 60
    while len(reports) < 2 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("{"):
            reports.append(json.loads(line))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert len(reports) == 2 and all(r["event"] == "status" and len(r["releases"]) == 3 for r in reports)
    assert proc.returncode == 0, err


def test_clickhouse_installations_are_summarised_by_their_state() -> None:
    from hfwizard.daytwo.status import _clickhouse_line

    chi = {"apiVersion": "clickhouse.altinity.com/v1", "kind": "ClickHouseInstallation",
           "metadata": {"name": "highflame", "namespace": "highflame"},
           "spec": {"configuration": {"clusters": [{"name": "c", "layout": {"shardsCount": 1, "replicasCount": 2}}]}},
           "status": {"status": "Completed", "hosts": 2, "hostsCompleted": 2}}
    assert _clickhouse_line(chi).startswith("ready; ")
    chi["status"] = {"status": "InProgress", "hosts": 2, "hostsCompleted": 1}
    line = _clickhouse_line(chi)
    assert line.startswith("not ready; ") and "1/2 hosts completed" in line
