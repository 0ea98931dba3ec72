"""The engine on Highflame's real charts, and independent releases run side by side.

The Kubernetes API is emulated (kmock plus our shim on loopback: no real API server can run on these
machines) and its controller player makes workloads ready; Helm is real (the Go SDK in a child). The
charts are Highflame's own tarballs, with the EKS values templates' `${VARS}` filled with harmless
placeholders.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from hfwizard.engine.context import RunContext, StepContext, StepResult
from hfwizard.engine.engine import Engine, EngineOptions
from hfwizard.engine.plan import Plan, Step, StepKind
from hfwizard.engine.steps import StepRunner, register
from hfwizard.engine.steps.verify import verify_once
from hfwizard.engine.workloads import release_objects
from hfwizard.events import Event, InstallFinished, LogLine, StepFailed, StepFinished, StepProgress, StepStarted
from hfwizard.platform.values import ServiceRelease
from hfwizard.profile import InstallProfile
from hfwizard.sandbox.emulator import ClusterThread
from hfwizard.store.journal import Journal, StepState
from tests import platform_support
from tests.engine_support import chart_cache, emulated_cluster, release_revisions

HIGHFLAME = platform_support.HIGHFLAME
CHARTS = HIGHFLAME / "charts"
VALUES = HIGHFLAME / "iac" / "helm-values" / "EKS"
DEMO = Path(__file__).parent / "data" / "charts" / "demo"

pytestmark = pytest.mark.skipif(not CHARTS.is_dir(), reason="Highflame's charts are not on this machine")


def _values(name: str) -> dict[str, Any]:
    text = (VALUES / f"highflame-{name}-helm-values-tmpl.yml").read_text()
    fills = {"DOCKER_IMAGE": f"ghcr.io/highflame/{name}", "IMAGE_TAG": "1.0.0"}
    text = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: fills.get(m.group(1), f"placeholder-{m.group(1).lower()}"), text)
    data = dict(yaml.safe_load(text))
    # The templates name Highflame's registry Secret; the emulated kubelet (like a real one) would wait
    # for it, and these tests are about releases, not pulls.
    data["imagePullSecrets"] = []
    # Likewise the Secrets they mount and read (the prerequisite and env Secrets the plan's own steps make).
    data["volumes"], data["volumeMounts"] = [], []
    data["additionalEnvFrom"] = {"enabled": False, "items": []}
    return data


def _profile(stall: int = 20, parallel: int = 4) -> InstallProfile:
    return InstallProfile.model_validate({
        "apiVersion": "hfwizard/v1", "kind": "InstallProfile", "metadata": {"name": "releases"},
        "target": {"namespace": "highflame"}, "ingress": {"enabled": False},
        "install": {"stallSeconds": stall, "timeoutSeconds": 300, "maxParallel": parallel}})


def _release(name: str, chart: str, version: str, vals: dict[str, Any]) -> ServiceRelease:
    return ServiceRelease(name, name, chart, version, vals, (), "core", None)


def _plan(releases: dict[str, tuple[Path, dict[str, Any]]], verify: bool = True, *, install: Path) -> Plan:
    """Release steps of these charts (put into the install's chart cache, where release steps take them)."""
    pins = chart_cache(install, *{chart for chart, _ in releases.values()})
    steps = [Step("namespace", "Namespace highflame", StepKind.NAMESPACE)]
    for name, (chart, vals) in releases.items():
        spec = _release(name, *pins[chart], vals)
        steps.append(Step(f"helm/{name}", f"release {name}", StepKind.RELEASE, ("namespace",), release=spec))
    if verify:
        steps.append(Step("verify", "Verify", StepKind.VERIFY, tuple(s.id for s in steps[1:])))
    return Plan("highflame", tuple(steps))


def _run(cluster: ClusterThread, tmp: Path, profile: InstallProfile, plan: Plan) -> tuple[int | None, list[Event]]:
    kc = cluster.write_kubeconfig(tmp / "kubeconfig")
    seen: list[Event] = []

    async def go() -> int | None:
        engine = Engine(profile, tmp / "install", plan=plan,
                        options=EngineOptions(kubeconfig=str(kc), context="sandbox", poll_interval=0.2))
        async for event in engine.run():
            seen.append(event)
        return engine.exit_code

    return asyncio.run(go()), seen


@pytest.mark.parametrize("driver", ["secret", "configmap"], ids=["records-read-through-the-api", "asked-of-helm"])
def test_verification_follows_what_a_generic_release_created(tmp_path: Path, driver: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """highflame-generic names its objects by `fullnameOverride` (highflame-admin, not the release
    name `admin`) and sets no instance label; highflame-redteam labels per component. Progress and
    verification follow both from the releases' manifests: read from Helm's release records, or,
    where Helm is said to keep them elsewhere (HELM_DRIVER), asked of Helm (the embedded child
    parses the manifest and returns kinds and names only)."""
    monkeypatch.setenv("HELM_DRIVER", driver)
    plan = _plan({"admin": (CHARTS / "highflame-generic-1.0.3.tgz", _values("admin")),
                  "redteam": (CHARTS / "highflame-redteam-1.0.5.tgz", _values("redteam"))},
                 install=tmp_path / "install")
    with emulated_cluster(ready_delay=2.0) as cluster:  # slow enough to be seen waiting
        code, seen = _run(cluster, tmp_path, _profile(), plan)
    done = seen[-1]
    assert isinstance(done, InstallFinished) and code == 0, [e for e in seen if isinstance(e, StepFailed)]
    progress = " ".join(e.message for e in seen if isinstance(e, StepProgress) and e.step_id == "helm/admin")
    assert "highflame-admin" in progress
    verified = next(e for e in seen if isinstance(e, StepFinished) and e.step_id == "verify")
    count = int(verified.detail.split(" ", 1)[0])
    assert count >= 3, verified.detail  # highflame-admin plus redteam's components
    if driver == "configmap":
        assert not any(isinstance(e, LogLine) and "release" in e.line and "no Helm record" in e.line for e in seen)


def test_a_held_back_deployment_is_named_by_progress_and_verification(tmp_path: Path) -> None:
    """The controller player never lets highflame-admin turn ready: the release step stalls naming it,
    and a verification pass over what the release created names it too."""
    plan = _plan({"admin": (CHARTS / "highflame-generic-1.0.3.tgz", _values("admin"))},
                 install=tmp_path / "install")
    profile = _profile(stall=5)
    with emulated_cluster(ready_delay=0.3) as cluster:
        assert cluster.controllers is not None
        cluster.controllers.hold("highflame-admin")
        code, seen = _run(cluster, tmp_path, profile, plan)
        failed = [e for e in seen if isinstance(e, StepFailed)]
        assert code == 1 and [e.step_id for e in failed] == ["helm/admin"], failed
        assert "waiting for highflame-admin 0/" in failed[0].error, failed[0].error
        assert any("pod/highflame-admin" in line for line in failed[0].pod_events), failed[0].pod_events

        from hfwizard.engine.kube import Kube, connect

        kube = Kube(connect(str(tmp_path / "kubeconfig"), "sandbox"))
        run = RunContext(profile, plan, Journal(tmp_path / "j.jsonl"), kube, None, seen.append,  # type: ignore[arg-type]
                         _no_fence, deadline=time.monotonic() + 60)
        made = {"admin": release_objects(kube, "highflame", "admin")}
        problems, loads = verify_once(StepContext(run, plan.step("verify")), made)
    assert "Deployment highflame-admin: 0/2 ready" in problems, problems
    assert any(w.name == "highflame-admin" and not w.is_ready for w in loads)


async def _no_fence() -> None:
    return None


def test_independent_releases_run_side_by_side_at_most_max_parallel(tmp_path: Path) -> None:
    """Five independent releases of the demo chart with install.maxParallel 2: two run at a time,
    never three; each one finishes on its own."""
    plan = _plan({f"par-{i}": (DEMO, {}) for i in range(5)}, verify=False,
                 install=tmp_path / "install")
    with emulated_cluster(ready_delay=1.0) as cluster:
        code, seen = _run(cluster, tmp_path, _profile(parallel=2), plan)
    assert code == 0, [e for e in seen if isinstance(e, StepFailed)]
    running, peak = set(), 0
    for e in seen:
        if isinstance(e, StepStarted) and e.step_id.startswith("helm/"):
            running.add(e.step_id)
            peak = max(peak, len(running))
        elif isinstance(e, StepFinished) and e.step_id.startswith("helm/"):
            running.discard(e.step_id)
    assert peak == 2
    assert sorted(e.step_id for e in seen if isinstance(e, StepFinished)) == sorted(
        ["namespace", *(f"helm/par-{i}" for i in range(5))])


class _Probe(StepRunner):
    """A step kind the run loop has never heard of: it writes a ConfigMap, and on resume checks it."""

    runs: ClassVar[list[str]] = []

    async def run(self, ctx: StepContext) -> StepResult:
        await ctx.fence()
        await asyncio.to_thread(ctx.kube.core.create_namespaced_config_map, ctx.namespace,
                                {"metadata": {"name": ctx.id.replace("/", "-")}, "data": {"k": "v"}})
        self.runs.append(ctx.id)
        ctx.note(action="probe")
        return StepResult(f"probe {ctx.id} done", {"made": ctx.id})

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        found = await asyncio.to_thread(ctx.kube.core.list_namespaced_config_map, ctx.namespace)
        names = {c.metadata.name for c in found.items}
        return ctx.id.replace("/", "-") in names and record.record.get("made") == ctx.id, "ConfigMap present"


register("probe")(_Probe)


def test_a_new_step_kind_plugs_in_without_the_run_loop_knowing(tmp_path: Path) -> None:
    """A kind registered from outside runs, is journalled and reported by the run loop; a second run
    (the first one left unfinished by a failing step after it) skips it through its own `still_done`."""
    probe = Step("probe/a", "Probe", "probe", ("namespace",))  # type: ignore[arg-type]
    broken = Step("helm/broken", "Broken", StepKind.RELEASE, ("probe/a",),
                  release=_release("broken", "no-such-chart", "0.0.1", {}))
    plan = Plan("highflame", (Step("namespace", "Namespace", StepKind.NAMESPACE), probe, broken))
    _Probe.runs.clear()
    with emulated_cluster() as cluster:
        code, seen = _run(cluster, tmp_path, _profile(), plan)
        assert code == 1 and _Probe.runs == ["probe/a"]
        assert any(isinstance(e, StepFinished) and e.step_id == "probe/a" and e.detail == "probe probe/a done"
                   for e in seen)
        code, seen = _run(cluster, tmp_path, _profile(), plan)
    assert code == 1 and _Probe.runs == ["probe/a"]  # not run again
    skipped = [e for e in seen if isinstance(e, StepFinished) and e.status == "skipped"]
    assert [e.step_id for e in skipped] == ["namespace", "probe/a"]


def test_the_embedded_helm_lists_a_release_s_objects_without_their_contents(tmp_path: Path) -> None:
    """The child parses the manifest (which can hold rendered Secrets) and returns kinds and names,
    the same list the engine reads from Helm's release record through the API."""
    plan = _plan({"admin": (CHARTS / "highflame-generic-1.0.3.tgz", _values("admin"))}, verify=False,
                 install=tmp_path / "install")
    with emulated_cluster() as cluster:
        code, _ = _run(cluster, tmp_path, _profile(), plan)
        assert code == 0
        from hfwizard.engine.helm_embedded import EmbeddedHelm
        from hfwizard.engine.kube import Kube, connect

        kc = str(tmp_path / "kubeconfig")
        rows = asyncio.run(EmbeddedHelm(kc, "sandbox").release_objects("admin", "highflame"))
        via_api = release_objects(Kube(connect(kc, "sandbox")), "highflame", "admin")
    assert ("Deployment", "highflame-admin", "highflame") in rows
    assert via_api is not None and sorted(rows) == sorted((o.kind, o.name, o.namespace) for o in via_api)
    assert all(len(row) == 3 for row in rows)


def test_one_failing_release_among_parallel_ones_is_rolled_back_alone(tmp_path: Path) -> None:
    """Three independent releases at once, one held back until it stalls: with rollback-on-failure that
    one is removed (a failed first install), the two beside it finish deployed, and the run fails
    naming it."""
    plan = _plan({f"side-{i}": (DEMO, {}) for i in range(3)}, verify=False,
                 install=tmp_path / "install")
    profile = _profile(stall=5)
    profile.install.rollback_on_failure = True
    with emulated_cluster(ready_delay=0.5) as cluster:
        assert cluster.controllers is not None
        cluster.controllers.hold("side-1-*")
        code, seen = _run(cluster, tmp_path, profile, plan)
        revisions = release_revisions(cluster, "highflame")
    failed = [e for e in seen if isinstance(e, StepFailed)]
    assert code == 1 and [e.step_id for e in failed] == ["helm/side-1"], failed
    assert any(isinstance(e, LogLine) and "removing the failed first install of side-1" in e.line for e in seen)
    assert revisions.get("side-0") == [(1, "deployed")] and revisions.get("side-2") == [(1, "deployed")]
    assert "side-1" not in revisions, revisions
