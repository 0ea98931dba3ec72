"""The engine explains a release that waits or fails: one line per cause, with the profile field to change.

End to end, each failure is produced by the emulated cluster (no real API server can run here; the
emulator's scheduler and kubelet checks write kube-scheduler's and the kubelet's own event wording) for
Highflame's real `highflame-generic` chart with its EKS values template (placeholders filled), with values
a real cluster would refuse or never schedule. Helm is real. The same install with the values (or the
Secrets) corrected then passes. The unit tests feed `diagnose` pods and events shaped as a real cluster
returns them, older scheduler wording included.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hfwizard.engine.diagnose import Hints, diagnose, hints_for, scheduling
from hfwizard.engine.engine import Engine, EngineOptions
from hfwizard.engine.plan import CHARTS_STEP, Plan, Step, StepKind
from hfwizard.events import Event, InstallFinished, LogLine, StepFailed, StepFinished, to_json
from hfwizard.platform.values import ServiceRelease
from hfwizard.profile import InstallProfile
from hfwizard.sandbox.emulator import ClusterThread
from tests import platform_support

HIGHFLAME = platform_support.HIGHFLAME
CHART_PIN = ("highflame-generic", "1.0.3")
CHART = HIGHFLAME / "charts" / f"{CHART_PIN[0]}-{CHART_PIN[1]}.tgz"
VALUES = HIGHFLAME / "iac" / "helm-values" / "EKS"
NS = "highflame"



# ---- unit: real-cluster shapes -----------------------------------------------------------------------


def _pending(name: str, spec: dict[str, Any], message: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": spec,
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}}


def test_selector_cause_names_the_gpu_group_and_the_module() -> None:
    message = ("0/6 nodes are available: 6 node(s) didn't match Pod's node affinity/selector. preemption: 0/6 "
               "nodes are available: 6 Preemption is not helpful for scheduling.")
    pods = [(_pending(f"highflame-guard-{i}", {"nodeSelector": {"kube/nodegroup": "gpu"}}, message),
             "highflame-guard") for i in range(2)]
    got = diagnose(pods, [], Hints(service="guard", module="guardrails"))
    assert [d.line for d in got] == [
        "highflame-guard: 0/6 nodes match nodeSelector kube/nodegroup=gpu: add a GPU node group labelled "
        "kube/nodegroup=gpu, or turn off the guardrails module (modules.guardrails.enabled: false)"]
    assert got[0].pods == 2


def test_older_scheduler_wording_and_several_reasons() -> None:
    # kube-scheduler before 1.26 said "had taint {..}, that the pod didn't tolerate".
    message = ("0/8 nodes are available: 2 Insufficient memory, 2 node(s) had taint {nvidia.com/gpu: present}, "
               "that the pod didn't tolerate, 4 node(s) didn't match node selector.")
    spec = {"nodeSelector": {"kube/nodegroup": "general"},
            "containers": [{"name": "app", "resources": {"requests": {"memory": "40Gi"}}}]}
    kinds = {d.kind: d.line for d in scheduling("highflame-admin", spec, message, Hints(service="admin"))}
    assert set(kinds) == {"resources", "taint", "node-selector"}
    assert "2/8 nodes lack free memory (each pod requests 40Gi memory)" in kinds["resources"]
    assert "services.admin.values" in kinds["resources"]
    assert "taint nvidia.com/gpu=present" in kinds["taint"]
    assert "4/8 nodes match nodeSelector kube/nodegroup=general" in kinds["node-selector"]


def test_image_pull_causes_are_told_apart() -> None:
    def status(message: str) -> dict[str, Any]:
        return {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {
            "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "app", "image": "ghcr.io/highflame/admin:9.9",
                                   "state": {"waiting": {"reason": "ImagePullBackOff", "message": message}}}]}}

    cases = {
        'failed to resolve reference "ghcr.io/highflame/admin:9.9": ghcr.io/highflame/admin:9.9: not found':
            "images.tag",
        "failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized":
            "images.pullSecret",
        "dial tcp: lookup ghcr.io: no such host": "images.mirror",
    }
    for message, field in cases.items():
        got = diagnose([(status(message), "highflame-admin")], [], Hints())
        assert len(got) == 1 and got[0].kind == "image-pull" and field in got[0].remedy, (message, got)


def test_hints_know_the_catalog_service_and_module() -> None:
    from hfwizard.platform.catalog import load_catalog

    catalog = load_catalog()
    for service, spec in catalog.services.items():
        hints = hints_for(InstallProfile(), catalog.release_name(service))
        assert (hints.service, hints.module or "core") == (service, spec.module)
    hints = hints_for(InstallProfile(), "highflame-guard")
    assert hints.module == "guardrails" and "highflame-guard-env" in hints.secrets
    assert hints_for(InstallProfile(), "not-a-service").service is None


# ---- end to end: the real chart in the emulated cluster -------------------------------------------------

pytestmark_e2e = pytest.mark.skipif(not CHART.is_file(), reason="Highflame's charts are not on this machine")


def _values(service: str) -> dict[str, Any]:
    text = (VALUES / f"highflame-{service}-helm-values-tmpl.yml").read_text()
    fills = {"DOCKER_IMAGE": f"ghcr.io/highflame-ai/release-highflame-{service}", "IMAGE_TAG": "2026.02"}
    text = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: fills.get(m.group(1), f"placeholder-{m.group(1).lower()}"), text)
    return dict(yaml.safe_load(text))


def _profile() -> InstallProfile:
    return InstallProfile.model_validate({
        "apiVersion": "hfwizard/v1", "kind": "InstallProfile", "metadata": {"name": "explain"},
        "target": {"namespace": NS}, "ingress": {"enabled": False}, "charts": {"mirror": str(CHART.parent)},
        "install": {"stallSeconds": 6, "timeoutSeconds": 120}})


def _plan(release: str, values: dict[str, Any]) -> Plan:
    """The chart fetched from Highflame's chart folder (the profile's mirror), then the release."""
    spec = ServiceRelease(release, release, *CHART_PIN, values, (), "core", None)
    return Plan(NS, (Step(CHARTS_STEP, "Charts", StepKind.CHARTS, charts=((*CHART_PIN, None),)),
                     Step("namespace", f"Namespace {NS}", StepKind.NAMESPACE, (CHARTS_STEP,)),
                     Step(f"helm/{release}", f"release {release}", StepKind.RELEASE, ("namespace",), release=spec)))


def _install(cluster: ClusterThread, idir: Path, release: str,
             values: dict[str, Any]) -> tuple[int | None, list[Event]]:
    kc = cluster.write_kubeconfig(idir.parent / "kubeconfig")
    seen: list[Event] = []

    async def go() -> int | None:
        engine = Engine(_profile(), idir, plan=_plan(release, values),
                        options=EngineOptions(kubeconfig=str(kc), context="sandbox", poll_interval=0.2, replan=True))
        async for event in engine.run():
            seen.append(event)
        return engine.exit_code

    return asyncio.run(go()), seen


def _secret(cluster: ClusterThread, name: str, data: dict[str, str], type_: str = "Opaque") -> None:
    import base64

    body = {"apiVersion": "v1", "kind": "Secret", "type": type_, "metadata": {"name": name, "namespace": NS},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
    cluster.call(lambda c: c.store.upsert(body))


def _license(cluster: ClusterThread) -> None:
    _secret(cluster, "highflame-license", {"license.jwt": "eyJ.lic", "public.pem": "-----BEGIN PUBLIC KEY-----"})


def _registry(cluster: ClusterThread) -> None:
    _secret(cluster, "highflame-registry-secret", {".dockerconfigjson": '{"auths": {}}'},
            "kubernetes.io/dockerconfigjson")


def _with(values: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(values)
    for path, value in changes.items():
        node = out
        keys = path.split("__")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return out


GPU_TOLERATION = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
ENV_FROM = {"enabled": True, "items": [{"secretRef": {"name": "highflame-admin-env"}}]}
MIRROR = "registry.internal.example/highflame-ai/release-highflame-admin"

# name: (seed, release, service, prepare, broken values, what the cause line must say, fix, fixed values)
Scenario = tuple[dict[str, Any], str, str, Callable[[ClusterThread], None], dict[str, Any], list[str],
                 Callable[[ClusterThread], None], dict[str, Any]]


def _none(cluster: ClusterThread) -> None:
    return None


def _both(cluster: ClusterThread) -> None:
    _license(cluster)
    _registry(cluster)


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "selector": lambda: (
        {}, "highflame-guard", "guard", _both, _values("guard"),
        ["highflame-guard: 0/6 nodes match nodeSelector kube/nodegroup=gpu: add a GPU node group labelled "
         "kube/nodegroup=gpu, or turn off the guardrails module (modules.guardrails.enabled: false)"],
        _none, _with(_values("guard"), nodeSelector={"kube/nodegroup": "general"})),
    "insufficient-cpu": lambda: (
        {}, "highflame-admin", "admin", _both, _with(_values("admin"), resources__requests__cpu="12"),
        ["highflame-admin: 6/6 nodes lack free cpu (each pod requests 12 cpu): add nodes (or larger ones) to the "
         "node group, or lower resources.requests.cpu in services.admin.values"],
        _none, _values("admin")),
    "untolerated-taint": lambda: (
        {"gpu_nodes": 2}, "highflame-guard", "guard", _both, _values("guard"),
        ["highflame-guard: 2/8 nodes have taint nvidia.com/gpu=present it does not tolerate: add a toleration for "
         "nvidia.com/gpu in services.guard.values (tolerations)"],
        _none, _with(_values("guard"), tolerations=GPU_TOLERATION)),
    "missing-secret-volume": lambda: (
        {}, "highflame-admin", "admin", _registry, _values("admin"),
        ["highflame-admin: Secret highflame-license (volume license-volume) does not exist: set "
         "platform.license.jwt and platform.license.publicKey so the install writes Secret highflame-license"],
        _license, _values("admin")),
    "missing-env-source": lambda: (
        {}, "highflame-admin", "admin", _both, _with(_values("admin"), additionalEnvFrom=ENV_FROM),
        ["highflame-admin: container highflame-generic: env source Secret highflame-admin-env does not exist: set "
         "the admin settings in the profile (its env Secret) so the install writes Secret highflame-admin-env"],
        lambda c: _secret(c, "highflame-admin-env", {"X": "y"}), _with(_values("admin"), additionalEnvFrom=ENV_FROM)),
    # A registry that refuses anonymous pulls is what makes a missing pull secret fatal on a real cluster;
    # the emulator has no credentials to check, so the registry is unreachable from its nodes instead.
    "pull-secret-and-image-pull": lambda: (
        {}, "highflame-admin", "admin", _license, _values("admin"),
        ["highflame-admin: image pull secret highflame-registry-secret does not exist: give the registry token in "
         "highflame-registry-secret (images.pullSecret)",
         "highflame-admin: container highflame-generic: image ghcr.io/highflame-ai/release-highflame-admin:2026.02: "
         "the registry cannot be reached from the nodes: open the nodes' egress to the registry, or set "
         "images.mirror to a registry they reach"],
        _registry, _with(_values("admin"), image__repository=MIRROR)),
}


@pytest.fixture
def make_cluster() -> Iterator[Callable[[dict[str, Any]], ClusterThread]]:
    started: list[ClusterThread] = []

    def make(seed: dict[str, Any]) -> ClusterThread:
        handle = ClusterThread(controllers=True, ready_delay=0.2,
                               unreachable_registries=frozenset({"ghcr.io"})).start()
        started.append(handle)
        handle.call(lambda c: c.seed_default(workers=6, cpu="8", memory="32Gi", **seed))
        return handle

    yield make
    for handle in started:
        handle.stop()


@pytestmark_e2e
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_refused_release_is_explained_then_passes_corrected(name: str, tmp_path: Path,
                                                             make_cluster: Callable[..., ClusterThread]) -> None:
    seed, release, _service, prepare, broken, wanted, fix, fixed = SCENARIOS[name]()
    if "image" not in name:
        fixed = _with(fixed, image__repository=MIRROR)  # only the image scenario pulls from ghcr.io
        broken = _with(broken, image__repository=MIRROR)
    cluster = make_cluster(seed)
    cluster.call(lambda c: c.store.upsert({"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": NS}}))
    prepare(cluster)
    idir = tmp_path / "install"
    code, events = _install(cluster, idir, release, broken)
    assert code == 1, [to_json(e) for e in events][-6:]
    failed = next(e for e in events if isinstance(e, StepFailed))
    said = [e.line for e in events if isinstance(e, LogLine) and e.source == "diagnose"]
    for line in wanted:
        assert any(line in got for got in failed.pod_events), (line, failed.pod_events)
        assert any(line in got for got in said), (line, said)  # told while it waited, not only at the end
    assert all(e.level == "warning" for e in events if isinstance(e, LogLine) and e.source == "diagnose")
    assert any(line in " ".join(to_json(failed)["pod_events"]) for line in wanted)  # the --json form

    fix(cluster)
    code, events = _install(cluster, idir, release, fixed)
    done = [e for e in events if isinstance(e, InstallFinished)]
    assert code == 0, [to_json(e) for e in events][-6:]
    assert done[0].status == "ok"
    assert any(isinstance(e, StepFinished) and e.step_id == f"helm/{release}" and e.status == "ok" for e in events)


def test_every_front_end_shows_the_cause(capsys: pytest.CaptureFixture[str]) -> None:
    """Plain mode, the Rich view and --json all carry a diagnosis, while waiting (a warning log line) and
    at the failure (the step's pod_events); the screens render the same LogLine and pod_events."""
    import io
    import json

    from rich.console import Console

    from hfwizard.frontends.console import RichView
    from hfwizard.frontends.jsonview import JsonView
    from hfwizard.frontends.plain import print_event

    cause = ("highflame-guard: 0/6 nodes match nodeSelector kube/nodegroup=gpu: add a GPU node group labelled "
             "kube/nodegroup=gpu, or turn off the guardrails module (modules.guardrails.enabled: false)")
    stream = [LogLine("helm/highflame-guard", cause, level="warning", source="diagnose"),
              StepFailed("helm/highflame-guard", "stalled", "look at the causes below", (cause,))]
    for event in stream:
        print_event(event)
    plain = " ".join(capsys.readouterr().out.split())  # plain mode wraps long lines at the terminal's width
    assert plain.count(cause) == 2
    rich = RichView()
    rich.console = Console(file=io.StringIO(), width=400, force_terminal=False)
    for event in stream:
        rich.show(event)
    rich.close()
    assert rich.console.file.getvalue().count(cause) == 2  # type: ignore[attr-defined]
    view = JsonView()
    for event in stream:
        view.show(event)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["event"] == "log" and lines[0]["line"] == cause and lines[0]["source"] == "diagnose"
    assert lines[1]["event"] == "step_failed" and lines[1]["pod_events"] == [cause]
