"""The headless install front end: preflight then engine, shown as JSON lines or a rich progress view."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfwizard.engine.engine import Engine, EngineOptions, install_signal_handlers
from hfwizard.errors import CheckFailed, ExitCode
from hfwizard.events import (
    Event,
    InstallFinished,
    LogLine,
    StepFailed,
    StepFinished,
    StepProgress,
    StepStarted,
    to_json,
)
from hfwizard.profile import InstallProfile


@dataclass
class RunSettings:
    json: bool = False
    kubeconfig: str | None = None
    context: str | None = None
    rollback_on_failure: bool | None = None
    replan: bool = False
    skip_preflight: bool = False
    skip_checks: tuple[str, ...] = ()
    secrets_base_dir: Path | None = None
    banner: str | None = None  # a line shown first (the sandbox says it is a rehearsal)


def run_install(profile: InstallProfile, install_dir: Path, settings: RunSettings) -> int:
    """Preflight (when available and not skipped), then the engine; returns the exit code."""
    return asyncio.run(_run(profile, install_dir, settings))


async def _run(profile: InstallProfile, install_dir: Path, settings: RunSettings) -> int:
    view = JsonView() if settings.json else RichView()
    if settings.banner:
        view.note(settings.banner)
    if not settings.skip_preflight and importlib.util.find_spec("hfwizard.preflight") is not None:
        code = await _preflight(profile, settings, view)
        if code != ExitCode.OK:
            return code
    engine = Engine(profile, install_dir, options=EngineOptions(
        kubeconfig=settings.kubeconfig, context=settings.context,
        rollback_on_failure=settings.rollback_on_failure, replan=settings.replan,
        secrets_base_dir=settings.secrets_base_dir))
    undo = install_signal_handlers(engine)
    try:
        async for event in engine.run():
            view.show(event)
    finally:
        undo()
        view.close()
    return engine.exit_code if engine.exit_code is not None else int(ExitCode.FAILED)


async def _preflight(profile: InstallProfile, settings: RunSettings, view: JsonView | RichView) -> int:
    from hfwizard.preflight import PreflightSettings, run_preflight

    ps = PreflightSettings(skip=settings.skip_checks, kubeconfig=settings.kubeconfig, context=settings.context,
                           base_dir=settings.secrets_base_dir)
    failed: list[str] = []
    events: AsyncIterator[Event] = run_preflight(profile, ps)
    async for event in events:
        view.show(event)
        result = getattr(event, "result", None)
        if result is not None and str(getattr(result, "status", "")) == "fail":
            failed.append(result.id)
    if failed:
        err = CheckFailed(f"preflight failed: {', '.join(failed)}; nothing was changed",
                          remedy="fix what the checks say, or skip one with --skip-check ID")
        view.note(f"hfwizard: {err}", error=True)
        return int(err.exit_code)
    return int(ExitCode.OK)


class JsonView:
    """`--json`: one JSON object per event and line on stdout."""

    def show(self, event: Event) -> None:
        sys.stdout.write(json.dumps(to_json(event), separators=(",", ":"), default=str) + "\n")
        sys.stdout.flush()

    def note(self, text: str, error: bool = False) -> None:
        sys.stderr.write(text + "\n")

    def close(self) -> None:
        pass


class RichView:
    """A plain progress view: one line per step with its status and a bar of ready replicas."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=False, highlight=False)
        self.progress = Progress(TextColumn("{task.fields[status]:>9}"), TextColumn("{task.description:<34}"),
                                 BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=self.console, transient=False)
        self.tasks: dict[str, Any] = {}
        self.progress.start()

    def _task(self, step_id: str, title: str | None = None) -> Any:
        if step_id not in self.tasks:
            self.tasks[step_id] = self.progress.add_task(title or step_id, total=None, status="waiting")
        return self.tasks[step_id]

    def note(self, text: str, error: bool = False) -> None:
        self.console.print(text, style="bold red" if error else "bold", markup=False)

    def show(self, event: Event) -> None:
        from hfwizard.events import CheckFinished

        if isinstance(event, CheckFinished):
            r = event.result
            if str(r.status) != "pass":
                self.console.print(f"check {r.id}: {r.status}: {r.finding}", markup=False)
        elif isinstance(event, StepStarted):
            t = self._task(event.step_id, f"{event.step_id}")
            self.progress.update(t, status="running", total=None)
        elif isinstance(event, StepProgress):
            self.progress.update(self._task(event.step_id), total=max(event.total, 1), completed=event.done)
        elif isinstance(event, StepFinished):
            t = self._task(event.step_id)
            total = self.progress.tasks[t].total or 1
            self.progress.update(t, status="done" if event.status == "ok" else event.status,
                                 total=total, completed=total)
        elif isinstance(event, StepFailed):
            t = self._task(event.step_id)
            self.progress.update(t, status="interrupted" if event.interrupted else "FAILED")
            self.console.print(f"{event.step_id}: {event.error}", style="red", markup=False)
            if event.remedy:
                self.console.print(f"  -> {event.remedy}", markup=False)
            for line in event.pod_events:
                self.console.print(f"  {line}", markup=False)
        elif isinstance(event, LogLine):
            if event.level in ("warning", "error"):
                self.console.print(f"{event.step_id}: {event.line}", markup=False)
        elif isinstance(event, InstallFinished):
            self.progress.stop()
            style = "bold green" if event.exit_code == 0 else "bold red"
            self.console.print(f"{event.status}: {event.message}", style=style, markup=False)

    def close(self) -> None:
        self.progress.stop()
