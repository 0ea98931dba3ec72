"""The crds step: the CustomResourceDefinitions a chart ships, applied server-side before its release.

Helm installs a chart's `crds/` folder on a first install only and never upgrades it. The Altinity
operator chart makes up for that with a pre-install/pre-upgrade hook (a ConfigMap, RBAC and a Job running
`bitnami/kubectl:latest`), which hfwizard turns off (`crdHook.enabled: false`, platform/clickhouse.py):
this step applies the chart's own CRDs instead, on every install and upgrade, under hfwizard's field
manager (taking over fields an earlier hook or Helm set, as the hook's `kubectl apply` did), and waits
until each is Established. No image to pull or mirror, no Job to wait for, and the CRDs follow the chart
version the catalog pins. On resume `still_done` checks that each one is there and Established and that
they came from the chart version this plan installs. Uninstall never deletes them: removing a CRD removes
every object of its kind, the ClickHouse installations and their data with them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hfwizard.engine.context import StepContext, StepError, StepResult, api_reason
from hfwizard.engine.plan import StepKind
from hfwizard.engine.steps.base import StepRunner, register
from hfwizard.engine.steps.charts import cached_charts
from hfwizard.engine.steps.release import values_hash
from hfwizard.platform.charts import chart_crds
from hfwizard.store.journal import StepState

JSON = dict[str, Any]
CRD_API = "apiextensions.k8s.io/v1"
CRD_KIND = "CustomResourceDefinition"
_FIRST_LOOK = 0.05  # CRDs are usually Established as soon as they are created: look again quickly first


@register(StepKind.CRDS)
class CrdsStep(StepRunner):
    async def run(self, ctx: StepContext) -> StepResult:
        spec = ctx.step.release
        assert spec is not None
        chart = await asyncio.to_thread(cached_charts(ctx.run.cache_dir).fetch, spec.chart, spec.version)
        crds = await asyncio.to_thread(chart_crds, chart.path)
        if not crds:
            raise StepError(f"chart {spec.chart} {spec.version} has no CustomResourceDefinitions in its crds/ folder",
                            remedy="the chart in the cache or the mirror is not the one the catalog pins; "
                                   "fetch it again (`hfwizard charts pull`)")
        applied: list[JSON] = []
        for index, crd in enumerate(crds):
            name = crd["metadata"]["name"]
            await ctx.fence()
            try:
                result = await asyncio.to_thread(ctx.kube.apply_object, crd, force=True)
            except Exception as exc:
                raise StepError(f"applying CustomResourceDefinition {name} failed: {api_reason(exc)}",
                                remedy="CRDs are cluster-wide: the Kubernetes user needs to create and patch "
                                       "customresourcedefinitions; then `hfwizard resume`") from None
            applied.append({"name": name, "uid": (result.get("metadata") or {}).get("uid"),
                            "hash": values_hash(crd)})
            if index == 0:
                ctx.kill_point("mid")
        await _wait_established(ctx, [a["name"] for a in applied])
        label = f"{spec.chart} {spec.version}"
        return StepResult(f"{len(applied)} CustomResourceDefinitions of {label} applied and established",
                          {"chart": label, "crds": applied})

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        spec = ctx.step.release
        assert spec is not None
        label = f"{spec.chart} {spec.version}"
        if record.record.get("chart") != label:
            return False, f"the CRDs were applied from {record.record.get('chart')}; this plan has {label}"
        names = [r.get("name") for r in record.record.get("crds") or []]
        for name in names:
            live = await asyncio.to_thread(ctx.kube.read_object, CRD_API, CRD_KIND, None, str(name))
            if live is None:
                return False, f"CustomResourceDefinition {name} is gone"
            if not established(live):
                return False, f"CustomResourceDefinition {name} is not Established"
        return True, f"{len(names)} CustomResourceDefinitions of {label} established"


def established(crd: JSON) -> bool:
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


async def _wait_established(ctx: StepContext, names: list[str]) -> None:
    """Until every CRD is Established; a stall (install.stallSeconds) or the install's deadline fails naming
    the ones still waiting."""
    stall = ctx.profile.install.stall_seconds
    since, pause = time.monotonic(), _FIRST_LOOK
    waiting = list(names)
    while True:
        left = []
        for name in waiting:
            live = await asyncio.to_thread(ctx.kube.read_object, CRD_API, CRD_KIND, None, name)
            if live is None or not established(live):
                left.append(name)
        if not left:
            return
        if len(left) < len(waiting):
            since = time.monotonic()
        waiting = left
        ctx.progress(len(names) - len(waiting), len(names), f"waiting for {', '.join(waiting)} to be Established")
        if time.monotonic() - since > stall or ctx.remaining() <= 0:
            raise StepError(f"CustomResourceDefinitions not Established after {stall}s: {', '.join(waiting)}",
                            remedy="look at `kubectl describe crd NAME` (a name conflict or a rejected schema); "
                                   "`hfwizard resume` waits again")
        await asyncio.sleep(pause)
        pause = min(ctx.run.poll_interval, pause * 2)


__all__ = ["CrdsStep", "established"]
