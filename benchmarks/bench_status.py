"""`status` of the whole platform against one `helm list` plus one pod list made directly, in the same run.

The platform's 19 services are installed once into an emulated cluster (kmock + our shim on loopback;
no real API server runs here) from Highflame's real charts and EKS values templates (generic 1.0.3,
redteam 1.0.5) by the engine with real Helm. Then, alternating which goes first, each round times:

- status: `hfwizard.daytwo.status.live_status(api_client, namespace)`: Helm's records (chart of each
  release's latest revision), Deployments, StatefulSets, Warning events, Ingresses, ClickHouse
  installations, each service's ready/desired replicas, images and last warning;
- baseline: `EmbeddedHelm.list_releases(namespace)` (a fresh backend: its Go child starts, as a `helm
  list` command does) followed by `CoreV1Api.list_namespaced_pod(namespace)`;
- baseline with a warm Helm: the same with the Helm child started before the timing (its lower bound);
- the `hfwizard status NAME --json --no-dns` command as its own process (interpreter and imports
  included), against the baseline run as its own Python process (the same Kubernetes client imports).

    .venv/bin/python benchmarks/bench_status.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hfwizard.daytwo.status import live_status
from hfwizard.engine.engine import Engine, EngineOptions
from hfwizard.engine.helm_embedded import EmbeddedHelm
from hfwizard.engine.kube import connect
from hfwizard.engine.plan import CHARTS_STEP, Plan, Step, StepKind
from hfwizard.platform.secretspec import Generate, SecretEntry, SecretSpec
from hfwizard.platform.values import ServiceRelease
from hfwizard.profile import InstallProfile
from hfwizard.profile_io import save_profile
from hfwizard.sandbox.emulator import ClusterThread
from hfwizard.store.install_dir import InstallDir

# `shared/highflame` beside the checkout or above a worktree ($HFWIZARD_HIGHFLAME_DIR wins), as the tests find it.
HIGHFLAME = Path(os.environ.get("HFWIZARD_HIGHFLAME_DIR") or next(
    (up / "shared" / "highflame" for up in Path(__file__).resolve().parents if (up / "shared" / "highflame").is_dir()),
    Path(__file__).resolve().parents[2] / "shared" / "highflame"))
VALUES = HIGHFLAME / "iac" / "helm-values" / "EKS"
NS = "highflame"


def _values(service: str) -> dict[str, Any]:
    text = (VALUES / f"highflame-{service}-helm-values-tmpl.yml").read_text()
    fills = {"DOCKER_IMAGE": f"ghcr.io/highflame-ai/release-highflame-{service}", "IMAGE_TAG": "1.0.0"}
    text = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: fills.get(m.group(1), f"placeholder-{m.group(1).lower()}"), text)
    out = dict(yaml.safe_load(text))
    if (out.get("nodeSelector") or {}).get("kube/nodegroup") == "gpu":
        # Highflame's guard values select the GPU node group but do not tolerate its usual taint
        # (which the emulator's GPU nodes carry); a real install needs the same toleration.
        out["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return out


def _plan() -> Plan:
    services = sorted(p.name.removeprefix("highflame-").removesuffix("-helm-values-tmpl.yml")
                      for p in VALUES.glob("highflame-*-helm-values-tmpl.yml"))
    if not services:  # an empty platform would time nothing and print figures anyway
        raise SystemExit(f"no values templates in {VALUES}: set HFWIZARD_HIGHFLAME_DIR")
    values = {svc: _values(svc) for svc in services}
    mounted = sorted({v["secret"]["secretName"] for vals in values.values() for v in vals.get("volumes") or []
                      if (v.get("secret") or {}).get("secretName")})
    secrets = tuple(SecretSpec(name, "mounted (benchmark)", {"value": SecretEntry(generate=Generate("hex"))})
                    for name in mounted)
    pins = {svc: ("highflame-redteam", "1.0.5") if svc.startswith("redteam") else ("highflame-generic", "1.0.3")
            for svc in services}
    charts = tuple((*pin, None) for pin in sorted(set(pins.values())))
    steps = [Step(CHARTS_STEP, "Charts", StepKind.CHARTS, charts=charts),
             Step("namespace", "Namespace", StepKind.NAMESPACE, (CHARTS_STEP,)),
             Step("secrets", "Secrets", StepKind.SECRETS, ("namespace",), secrets=secrets)]
    for svc in services:
        spec = ServiceRelease(svc, f"highflame-{svc}", *pins[svc], values[svc], (), "core", None)
        steps.append(Step(f"helm/highflame-{svc}", svc, StepKind.RELEASE, ("secrets",), release=spec))
    return Plan(NS, tuple(steps))


def _install(tmp: Path, kc: Path) -> tuple[Path, int]:
    prof = InstallProfile.model_validate({
        "apiVersion": "hfwizard/v1", "kind": "InstallProfile", "metadata": {"name": "bench"},
        "target": {"namespace": NS, "kubeconfig": str(kc), "context": "sandbox"},
        "ingress": {"domain": "hf.example.test", "className": "alb", "tls": {"enabled": False}},
        "charts": {"mirror": str(HIGHFLAME / "charts")},
        "install": {"stallSeconds": 30, "timeoutSeconds": 900, "maxParallel": 4}})
    inst = InstallDir.under(tmp / "state", "bench").create()
    save_profile(inst.profile_path, prof)
    plan = _plan()

    async def go() -> int | None:
        engine = Engine(prof, inst, plan=plan, options=EngineOptions(kubeconfig=str(kc), context="sandbox"))
        async for event in engine.run():
            if type(event).__name__ == "StepFailed":
                print(event, file=sys.stderr)
        return engine.exit_code

    if asyncio.run(go()) != 0:
        raise SystemExit("the platform did not install into the emulator")
    return tmp / "state", len(plan.releases)


def _baseline(kc: Path, api: Any, *, warm: bool) -> float:
    from kubernetes import client

    async def go() -> float:
        helm = EmbeddedHelm(str(kc), "sandbox")
        if warm:
            await helm.prewarm()
        start = time.perf_counter()
        releases = await helm.list_releases(NS)
        pods = client.CoreV1Api(api).list_namespaced_pod(NS)
        took = time.perf_counter() - start
        await helm.aclose()
        assert releases and pods.items
        return took

    return asyncio.run(go())


def _status(api: Any, expected: int) -> float:
    start = time.perf_counter()
    st = live_status(api, NS)
    took = time.perf_counter() - start
    assert len(st.releases) == expected and not st.problems, st.problems
    return took


def _connect(kc: Path, *, probe: bool) -> float:
    """What the status command does before its read: the kubeconfig loaded (`connect`), or loaded and the
    API asked once for /version (`reach`, which turns an unreachable cluster into a clear exit 1)."""
    from hfwizard.daytwo.reach import reach

    start = time.perf_counter()
    if probe:
        asyncio.run(reach(str(kc), "sandbox"))
    else:
        connect(str(kc), "sandbox")
    return time.perf_counter() - start


def _process_env(tmp: Path) -> dict[str, str] | None:
    """As installed from a wheel: modules from bytecode (this machine sets PYTHONDONTWRITEBYTECODE, and every
    process would compile hfwizard's modules at start), cached in a temporary folder, never the checkout."""
    if os.environ.get("BENCH_NO_BYTECODE") == "1":
        return None
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(tmp / "pycache")}


def _command(state: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hfwizard", "status", "bench", "--json", "--no-dns",
                           "--state-dir", str(state)], capture_output=True, text=True, timeout=60,
                          env=_process_env(state.parent))
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return took


_BASELINE_PROCESS = """
import asyncio, sys
from kubernetes import client, config
from hfwizard.engine.helm_embedded import EmbeddedHelm
kc, ns = sys.argv[1], sys.argv[2]
async def go():
    helm = EmbeddedHelm(kc, "sandbox")
    releases = await helm.list_releases(ns)
    await helm.aclose()
    pods = client.CoreV1Api(config.new_client_from_config(kc, context="sandbox")).list_namespaced_pod(ns)
    assert releases and pods.items
asyncio.run(go())
"""


def _baseline_process(kc: Path) -> float:
    """The baseline as its own Python process: the same imports of the Kubernetes client a command pays."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _BASELINE_PROCESS, str(kc), NS], capture_output=True, text=True,
                          timeout=60, env=_process_env(kc.parent))
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        ct = ClusterThread(controllers=True, ready_delay=0.1).start()
        try:
            ct.call(lambda c: c.seed_default(workers=6, cpu="16", memory="64Gi", gpu_nodes=6), timeout=30)
            kc = ct.write_kubeconfig(tmp / "kubeconfig")
            began = time.perf_counter()
            state, count = _install(tmp, kc)
            print(f"installed {count} releases in {time.perf_counter() - began:.1f}s")
            api = connect(str(kc), "sandbox")
            _status(api, count)  # a first call each: connection pools and imports warm
            _baseline(kc, api, warm=True)
            _command(state), _baseline_process(kc)  # a first run each: the bytecode cache filled
            rows: dict[str, list[float]] = {"status": [], "helm list + pod list": [], "same, Helm warm": [],
                                            "connect (kubeconfig)": [], "reach (kubeconfig+/version)": [],
                                            "status command (process)": [], "baseline as a process": []}
            for i in range(args.rounds):
                order = [("status", lambda: _status(api, count)),
                         ("helm list + pod list", lambda: _baseline(kc, api, warm=False))]
                for name, fn in (order if i % 2 == 0 else order[::-1]):
                    rows[name].append(fn())
                rows["same, Helm warm"].append(_baseline(kc, api, warm=True))
                pair = [("connect (kubeconfig)", lambda: _connect(kc, probe=False)),
                        ("reach (kubeconfig+/version)", lambda: _connect(kc, probe=True))]
                for name, fn in (pair if i % 2 == 0 else pair[::-1]):
                    rows[name].append(fn())
                pair = [("status command (process)", lambda: _command(state)),
                        ("baseline as a process", lambda: _baseline_process(kc))]
                for name, fn in (pair if i % 2 == 0 else pair[::-1]):
                    rows[name].append(fn())
        finally:
            ct.stop()
    base = statistics.median(rows["helm list + pod list"])
    print(f"\nmedian of {args.rounds} rounds ({count} releases)")
    process = statistics.median(rows["baseline as a process"])
    for name, times in rows.items():
        med = statistics.median(times)
        ref = process if "process" in name else base
        print(f"  {name:<28} {med:.3f}s   ratio to its baseline {med / ref:.2f}")


if __name__ == "__main__":
    main()
