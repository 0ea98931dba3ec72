"""Which cluster a command talks to is decided once (hfwizard.operations.resolve_target): a flag, then the
profile, then $KUBECONFIG. `install` once let $KUBECONFIG beat the profile's kubeconfig while `preflight`
did not, so the two could check one cluster and install into another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hfwizard.operations import Target, resolve_target
from hfwizard.profile_io import load_profile
from tests.engine_support import CORE, emulated_cluster, env, events, release_revisions, write_profile
from tests.fixtures.servers import PgServer

# Every check group but Kubernetes and Helm: the data services and clouds of the canary profile are
# not running here, and the question is only which cluster each command reaches.
# Nor are the canary profile's license files and its GPU node group (the emulated cluster has none).
SKIP = [a for g in ("postgres", "redis", "clerk", "blob", "cloud", "outbound", "platform", "kubernetes/node-groups")
        for a in ("--skip-check", g)]


def test_precedence_flag_then_profile_then_environment(tmp_path: Path) -> None:
    profile = load_profile(write_profile(tmp_path, tmp_path / "profile-kubeconfig")).profile
    named = str(tmp_path / "profile-kubeconfig")
    assert resolve_target(profile) == Target(named, "sandbox")
    assert resolve_target(profile, kubeconfig="/flag/kc", context="ctx") == Target("/flag/kc", "ctx")
    profile.target.kubeconfig = None
    profile.target.context = None
    # Nothing named: the Kubernetes client's default ($KUBECONFIG, then ~/.kube/config) applies.
    assert resolve_target(profile) == Target(None, None)


@pytest.mark.timeout(240)
def test_install_and_preflight_reach_the_profiles_cluster_not_kubeconfig_env(tmp_path: Path, pg17: PgServer) -> None:
    elsewhere = tmp_path / "elsewhere-kubeconfig"  # $KUBECONFIG: a cluster nobody serves
    elsewhere.write_text("apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster: {server: 'https://127.0.0.1:9'}\n"
                         "contexts:\n- name: sandbox\n  context: {cluster: x, user: u}\ncurrent-context: sandbox\n"
                         "users:\n- name: u\n  user: {token: t}\n")
    extra = {"KUBECONFIG": str(elsewhere)}
    with emulated_cluster(ready_delay=0.2) as cluster:
        kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        profile = write_profile(tmp_path, kc, tls=False, pg=pg17)

        pre = subprocess.run([sys.executable, "-m", "hfwizard", "preflight", "--profile", str(profile), "--json",
                              *SKIP], cwd=tmp_path, env=env(**extra), capture_output=True, text=True, timeout=120)
        checks = {e["check_id"]: e["status"] for e in events(pre.stdout) if e["event"] == "check"}
        assert checks["kubernetes/api"] == "pass", pre.stdout + pre.stderr
        assert pre.returncode == 0, pre.stdout + pre.stderr

        inst = subprocess.run([sys.executable, "-m", "hfwizard", "install", "--profile", str(profile), "--yes",
                               "--json", *SKIP, "--state-dir", str(tmp_path / "state")], cwd=tmp_path,
                              env=env(**extra), capture_output=True, text=True, timeout=180)
        seen = events(inst.stdout)
        checks = {e["check_id"]: e["status"] for e in seen if e["event"] == "check"}
        assert checks["kubernetes/api"] == "pass", inst.stdout[-3000:] + inst.stderr
        assert inst.returncode == 0, inst.stdout[-3000:] + inst.stderr
        assert seen[-1]["event"] == "done" and seen[-1]["exit_code"] == 0
        # The install landed in the profile's cluster, the one the preflight checked.
        assert release_revisions(cluster) == {**{f"highflame-{s}": [(1, "deployed")] for s in CORE},
                                             "clickhouse-operator": [(1, "deployed")]}
