"""Preflight: checks stream in live, each opening to its remedy; Install once nothing failed or it is overridden."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from textual import work
from textual.containers import Vertical
from textual.widgets import Checkbox, Collapsible, Static

from hfwizard import operations
from hfwizard.checks.base import CheckResult, Status, by_urgency
from hfwizard.errors import HfwizardError
from hfwizard.events import CheckFinished, CheckStarted, Event, PreflightFinished

from .base import StepScreen, slug

ICON = {Status.PASS: "✓", Status.WARN: "!", Status.FAIL: "✗", Status.SKIPPED: "-"}

# Remedies are written for the command line; on this screen the same fix has another handle.
_WIZARD_WORDS: tuple[tuple[str, str], ...] = (
    (r"(skip (it|one|the check)? ?with )?--skip-check \S+", "tick Override on this check"),
    (r"pass --kubeconfig FILE, or set target\.kubeconfig in the profile",
     "give the Kubeconfig file on the Cluster step"),
    (r"point --kubeconfig at", "give, on the Cluster step, the path of"),
    (r"--kubeconfig", "the Kubeconfig file (Cluster step)"),
    (r"fix --context", "fix the Context on the Cluster step"),
    (r"--context", "the Context (Cluster step)"),
)


def wizard_words(text: str) -> str:
    """A remedy phrased for the wizard: command-line options become the field or button that does it."""
    import re

    for pattern, words in _WIZARD_WORDS:
        text = re.sub(pattern, words, text)
    return text


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
        self._parts: dict[str, tuple[Collapsible, Static, Checkbox]] = {}

    def compose_body(self) -> Iterable[Any]:
        yield Static("Checking every requirement; nothing is changed.", classes="intro", id="preflight-intro")
        yield Vertical(id="checks")
        skipped = Collapsible(title="skipped", id="skipped", collapsed=True)
        skipped.display = False
        yield skipped

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
            box.mount(self._row(event.check_id, f"… {event.title}", "running…"))
        elif isinstance(event, CheckFinished):
            self.show_result(event.result)
        elif isinstance(event, PreflightFinished):
            self.finished = True
            self.query_one("#preflight-intro", Static).update(
                f"{event.failed} failed, {event.warned} warnings, {event.passed} passed, {event.skipped} skipped.")
            self.call_after_refresh(self.reorder)  # once the last rows are mounted
            self.revalidate()

    def _row(self, check_id: str, title: str, text: str) -> Collapsible:
        # The row's parts are kept, not looked up: a fast check answers before its row has mounted.
        body = Static(text, markup=False)
        override = Checkbox("Override: go ahead despite this failure", id=f"override-{slug(check_id)}")
        override.display = False
        row = Collapsible(body, override, title=title, id=f"check-{slug(check_id)}", collapsed=True)
        self._parts[check_id] = (row, body, override)
        return row

    def show_result(self, r: CheckResult) -> None:
        self.results[r.id] = r
        if r.id not in self._parts:
            self.query_one("#checks", Vertical).mount(self._row(r.id, "", ""))
        row, body, override = self._parts[r.id]
        # Updated in place: the row keeps its place in the list and the operator's focus.
        row.title = f"{ICON[r.status]} {r.title}: {r.finding}"
        body.update(r.finding + (f"\n→ {wizard_words(r.remedy)}" if r.remedy else ""))
        override.display = r.status is Status.FAIL
        with override.prevent(Checkbox.Changed):
            override.value = r.id in (self.draft.get("preflight.skip") or [])
        row.collapsed = r.status is not Status.FAIL
        self.revalidate()

    def reorder(self) -> None:
        """Failures first, then warnings, then passes; the skipped checks folded into one line."""
        box = self.query_one("#checks", Vertical)
        rows = {c.id: c for c in box.query(Collapsible) if c.parent is box}
        listed, skipped = by_urgency(self.results.values())
        shown = [rows[f"check-{slug(r.id)}"] for r in listed if f"check-{slug(r.id)}" in rows]
        if shown:
            box.move_child(shown[0], before=0)
            for before, row in pairwise(shown):
                box.move_child(row, after=before)
        for r in skipped:
            gone = rows.get(f"check-{slug(r.id)}")
            if gone is not None:
                gone.remove()
        fold = self.query_one("#skipped", Collapsible)
        fold.title = f"- {len(skipped)} skipped (Enter to list)"
        fold.query_one(Collapsible.Contents).mount(
            Static("\n".join(f"- {r.title}: {r.finding}" for r in skipped), markup=False))
        fold.display = bool(skipped)

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
