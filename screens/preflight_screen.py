"""Preflight: checks stream in live, each opening to its remedy; Install once nothing failed or it is overridden."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import work
from textual.containers import Vertical
from textual.widgets import Checkbox, Collapsible, Static

from hfwizard import operations
from hfwizard.checks.base import CheckResult, Status
from hfwizard.errors import HfwizardError
from hfwizard.events import CheckFinished, CheckStarted, Event, PreflightFinished

from .base import StepScreen, slug

ICON = {Status.PASS: "✓", Status.WARN: "!", Status.FAIL: "✗", Status.SKIPPED: "-"}


class PreflightScreen(StepScreen):
    STEP = "preflight"
    TITLE = "Preflight"
    NEXT_LABEL = "Install"
    HELP = """\
Every requirement is checked against the real cluster and services before anything changes:
Kubernetes version and nodes, PostgreSQL, Redis, the backup bucket, Clerk, and outbound access to
the image registry. Each line opens (Enter) to show what was found and how to fix it.

**Install** is available when nothing failed. To go ahead despite a failure you must tick
*Override* on that check; the override is recorded in the profile (`preflight.skip`).
"""

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, CheckResult] = {}
        self.finished = False
        self.unavailable: str | None = None

    def compose_body(self) -> Iterable[Any]:
        yield Static("Checking every requirement; nothing is changed.", classes="intro", id="preflight-intro")
        yield Vertical(id="checks")

    def on_mount(self) -> None:
        super().on_mount()
        self.run_checks()

    @work(exclusive=True, group="preflight", exit_on_error=False)
    async def run_checks(self) -> None:
        profile = self.draft.profile()
        # The sandbox's checks need its emulated cluster: the rehearsal driver starts it first.
        self.start_busy("preflight", "starting the emulated cluster" if profile.is_sandbox else "checking")
        try:
            async for event in operations.preflight(profile, self.draft.dir):
                if self.busy.get("preflight") != "checking":
                    self.start_busy("preflight", "checking")
                self.on_check_event(event)
        except HfwizardError as exc:
            self.unavailable = str(exc)
            self.revalidate()

    def on_check_event(self, event: Event) -> None:
        box = self.query_one("#checks", Vertical)
        if isinstance(event, CheckStarted):
            box.mount(Collapsible(Static("running…", markup=False), title=f"… {event.title}",
                                  id=f"check-{slug(event.check_id)}", collapsed=True))
        elif isinstance(event, CheckFinished):
            self.show_result(event.result)
        elif isinstance(event, PreflightFinished):
            self.finished = True
            self.query_one("#preflight-intro", Static).update(
                f"{event.passed} passed, {event.warned} warnings, {event.failed} failed, {event.skipped} skipped.")
            self.revalidate()

    def show_result(self, r: CheckResult) -> None:
        self.results[r.id] = r
        cid = f"check-{slug(r.id)}"
        body: list[Any] = [Static(r.finding + (f"\n→ {r.remedy}" if r.remedy else ""), markup=False)]
        if r.status is Status.FAIL:
            body.append(Checkbox("Override: go ahead despite this failure", id=f"override-{slug(r.id)}",
                                 value=r.id in (self.draft.get("preflight.skip") or [])))
        title = f"{ICON[r.status]} {r.title}: {r.finding}"
        found = self.query(f"#{cid}")
        if found:
            # Updated in place: the row keeps its place in the list and the operator's focus.
            coll = found.first(Collapsible)
            coll.title = title
            contents = coll.query_one(Collapsible.Contents)
            contents.remove_children()
            contents.mount(*body)
            coll.collapsed = r.status is not Status.FAIL
        else:
            self.query_one("#checks", Vertical).mount(
                Collapsible(*body, title=title, id=cid, collapsed=r.status is not Status.FAIL))
        self.revalidate()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        for rid in self.results:
            if event.checkbox.id == f"override-{slug(rid)}":
                skip = [s for s in self.draft.get("preflight.skip") or [] if s != rid]
                self.draft.set("preflight.skip", [*skip, rid] if event.value else skip or None)
                self.revalidate()

    def extra_problems(self) -> list[str]:
        if self.unavailable:
            return [self.unavailable]
        if not self.finished:
            return []
        skip = set(self.draft.get("preflight.skip") or [])
        return [f"{r.title} failed: fix it and run preflight again, or tick Override"
                for r in self.results.values() if r.status is Status.FAIL and r.id not in skip]

    def revalidate(self) -> None:
        super().revalidate()
        if not self.finished:
            from textual.widgets import Button

            self.query_one("#next", Button).disabled = True

    def action_next(self) -> None:
        from textual.widgets import Button

        if not self.query_one("#next", Button).disabled:
            self.draft.finish()  # overrides are part of the profile the install reads
        super().action_next()
