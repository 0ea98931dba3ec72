"""The charts step: fetch every chart the plan installs, check its digest, keep it in the install's cache.

It runs before anything in the cluster changes, so a wrong digest, a missing version or an unreachable
repository stops the install with the cluster untouched. The cache doubles as a mirror folder (an
index.yaml with the digests is written beside the tarballs), so a resume or a sandbox can install from it
without reaching the repository.
"""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

from hfwizard.engine.context import StepContext, StepResult
from hfwizard.engine.plan import StepKind
from hfwizard.engine.steps.base import StepRunner, register
from hfwizard.platform.charts import ChartError, ChartSource, FetchedChart, platform_source
from hfwizard.profile import InstallProfile
from hfwizard.store.journal import StepState

CHARTS_CACHE = "charts"
"""The folder under the install's cache holding fetched charts (and an index.yaml: a mirror folder)."""
SANDBOX_CHARTS_ENV = "HFWIZARD_SANDBOX_CHARTS"
"""A rehearsal has no network to count on: a mirror folder for the charts from other repositories (the
ClickHouse operator's; Highflame's repository does not carry it), used when the profile names no mirror."""


def chart_source(profile: InstallProfile, cache_dir: Path, repository: str | None = None,
                 pins: tuple[tuple[str, str], ...] = ()) -> ChartSource:
    """Where the install's charts come from: charts.mirror when set, else charts.repository, cached. A chart
    from another `repository` (the ClickHouse operator's) comes from the mirror too when one is set, else
    from charts.operatorRepository or that repository.

    A rehearsal must not need the internet: without a mirror it takes $HFWIZARD_SANDBOX_CHARTS (a mirror
    folder, as `hfwizard sandbox --charts`), else the install's cache when it holds every chart (`pins`),
    and only then the repositories."""
    cache = cache_dir / CHARTS_CACHE
    charts = profile.charts
    if profile.is_sandbox and not charts.mirror:
        if os.environ.get(SANDBOX_CHARTS_ENV):
            return ChartSource(os.environ[SANDBOX_CHARTS_ENV])
        if pins and all((cache / f"{name}-{version}.tgz").is_file() for name, version in pins) \
                and (cache / "index.yaml").is_file():
            return ChartSource(str(cache))
    if repository is None:
        return platform_source(charts.repository, charts.mirror, cache)
    return ChartSource(charts.mirror or charts.operator_repository or repository, cache)


@register(StepKind.CHARTS)
class ChartsStep(StepRunner):
    async def run(self, ctx: StepContext) -> StepResult:
        pins = tuple((name, version) for name, version, _ in ctx.step.charts)
        fetched: list[FetchedChart] = []
        for i, (name, version, repository) in enumerate(ctx.step.charts):
            source = chart_source(ctx.profile, ctx.run.cache_dir, repository, pins)
            try:
                got = await asyncio.to_thread(source.fetch, name, version)
            except ChartError as exc:
                if not ctx.profile.is_sandbox:
                    raise
                # A rehearsal must not need the internet: say how to give it the charts instead.
                raise ChartError(exc.message, remedy="pass `hfwizard sandbox --charts DIR` with a mirror folder "
                                 "(index.yaml and the chart tarballs; `hfwizard charts pull --to DIR` writes one "
                                 "where the repository is reachable)") from None
            fetched.append(got)
            ctx.log(f"chart {name} {version} from {got.origin}" + (f" (sha256 {got.digest})" if got.digest else ""))
            ctx.progress(i + 1, len(ctx.step.charts), f"{name} {version}")
        await asyncio.to_thread(write_cache_index, ctx.run.cache_dir / CHARTS_CACHE, fetched)
        return StepResult(f"{len(fetched)} charts checked: " + ", ".join(f"{f.name} {f.version}" for f in fetched),
                          {"charts": {f"{f.name}-{f.version}": f.digest for f in fetched}})

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        cache = cached_charts(ctx.run.cache_dir)
        for name, version, _ in ctx.step.charts:
            try:
                await asyncio.to_thread(cache.fetch, name, version)
            except ChartError as exc:
                return False, f"the cached chart is no longer the checked one ({exc.message})"
        return True, f"{len(ctx.step.charts)} charts in the install's cache, digests checked"


def cached_charts(cache_dir: Path) -> ChartSource:
    """The install's chart cache as a mirror folder: what the release steps install from (never the network)."""
    return ChartSource(str(cache_dir / CHARTS_CACHE))


def write_cache_index(folder: Path, fetched: list[FetchedChart]) -> None:
    """Copy what came from elsewhere into `folder` and list it in an index.yaml with its digest."""
    from ruamel.yaml import YAML

    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    index_path = folder / "index.yaml"
    entries: dict[str, list[dict[str, object]]] = {}
    if index_path.is_file():
        old = YAML(typ="safe", pure=True).load(index_path.read_bytes()) or {}
        entries = {k: list(v) for k, v in (old.get("entries") or {}).items()}
    for f in fetched:
        if f.digest is None or not f.path.is_file():
            continue  # a chart folder has no digest to list
        target = folder / f"{f.name}-{f.version}.tgz"
        if f.path.resolve() != target.resolve():
            data = f.path.read_bytes()
            tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        row: dict[str, object] = {"apiVersion": "v2", "name": f.name, "version": f.version, "digest": f.digest,
                                  "urls": [target.name]}
        entries[f.name] = [e for e in entries.get(f.name, []) if str(e.get("version")) != f.version] + [row]
    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump({"apiVersion": "v1", "entries": entries}, buf)
    tmp = index_path.with_name(f".index.yaml.{os.getpid()}.part")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, index_path)
