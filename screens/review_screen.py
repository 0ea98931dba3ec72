"""Review: every answer as a short summary per step (each with Edit), the services per module, and Export."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from textual.containers import Horizontal
from textual.widgets import Button, Collapsible, Static

from hfwizard import operations
from hfwizard.draft import STEPS, effective
from hfwizard.profile import MODULE_TITLES, InstallProfile
from hfwizard.profile_io import dump_profile
from hfwizard.questions import for_step

from .base import StepScreen, to_text
from .welcome_screen import STEP_TITLES


def services_by_module(profile: InstallProfile) -> list[tuple[str, list[str]]]:
    """(module title, its services) for what the install will run: core first, then each module that is on."""
    from hfwizard.platform.catalog import load_catalog
    from hfwizard.platform.values import CORE, enabled_services

    catalog = load_catalog(profile.platform.version)
    on = enabled_services(profile, catalog)
    titles = {"core": "Core (always)", **{m.value: t for m, t in MODULE_TITLES.items()}}
    out: dict[str, list[str]] = {}
    for name in on:
        out.setdefault(catalog.services[name].module, []).append(name)
    order = [CORE, *(m.value for m in MODULE_TITLES)]
    return [(titles.get(m, m), out[m]) for m in order if m in out]


class ReviewScreen(StepScreen):
    STEP = "review"
    TITLE = "Review"
    NEXT_LABEL = "Preflight"
    HELP = """\
Every answer, one short section per step; **Edit** opens that step and its Next comes back here.
Below: the services the install will run, per module, and the Helm values that differ from the last
finished install of this name (all of them for a first install). The whole profile as YAML is folded
at the end (secrets appear only as references).

**Export** writes the profile to a file and shows the command that replays it headless.
**Preflight** checks every requirement against the real cluster and services; nothing is changed
until the install starts.
"""

    def compose_body(self) -> Iterable[Any]:
        yield Button("Export…", id="export")
        try:
            profile = self.draft.profile()
        except ValidationError:
            yield Static("The answers are not complete: fix the problems listed below (Back to reach "
                         "their step).", classes="intro")
            return
        for step in STEPS:
            lines = self.summary(step)
            if not lines:
                continue
            with Horizontal(classes="review-head"):
                yield Static(STEP_TITLES.get(step, step), classes="section review-title")
                yield Button("Edit", id=f"edit-{step}", classes="edit-link")
            yield Static("\n".join(lines), id=f"summary-{step}", classes="review-lines", markup=False)
        yield Static("Services to install", classes="section")
        yield Static("\n".join(f"{title}: {', '.join(names)}" for title, names in services_by_module(profile)),
                     id="services", markup=False)
        yield Static("Helm values changed since the last install", classes="section")
        try:
            diff = operations.values_diff(operations.last_installed_profile(self.draft.dir), profile)
        except Exception as exc:  # the diff is information only: never stop the review on it
            diff = [f"(could not compute: {type(exc).__name__})"]
        with Collapsible(title=f"{len(diff)} values", collapsed=len(diff) > 8, id="values-fold"):
            yield Static("\n".join(diff) or "(no changes)", id="values-diff", markup=False)
        with Collapsible(title="The profile as YAML", collapsed=True, id="yaml-fold"):
            yield Static(dump_profile(profile), id="profile-yaml", markup=False)

    def summary(self, step: str) -> list[str]:
        """One line per question the step asks (answered or defaulted); modules fold into one line each."""
        data = self.draft.data
        if step == "modules":
            out = []
            for q in for_step(step):
                if q.path.endswith(".enabled"):
                    base = q.path.removesuffix(".enabled")
                    on = bool(effective(data, q.path))
                    out.append(f"{'[x]' if on else '[ ]'} {q.label}"
                               + (f" · {effective(data, base + '.replicas')} replicas" if on else ""))
                elif not q.path.endswith(".replicas") and q.applies(data):
                    out.append(f"{q.label}: {to_text(effective(data, q.path)) or '—'}")
            return out
        lines = []
        for q in for_step(step):
            if not q.applies(data):
                continue
            value = effective(data, q.path)
            shown = ("yes" if value else "no") if q.kind == "bool" else (to_text(value) or "—")
            lines.append(f"{q.label}: {shown}")
        return lines

    def on_button_pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        if bid == "export":
            event.stop()
            self.export()
            return
        if bid.startswith("edit-"):
            event.stop()
            self.wizard.edit_step(bid.removeprefix("edit-"))
            return
        super().on_button_pressed(event)

    def export(self) -> None:
        from .export_modal import ExportModal

        try:
            profile = self.draft.profile()
        except ValidationError:
            self.notify("fix the problems first", severity="error")
            return

        def done(path: Any) -> None:
            if path is not None:
                self.notify(f"wrote {path}\nreplay it headless: hfwizard install --profile {path} --yes",
                            timeout=12)

        self.app.push_screen(ExportModal(profile, f"{self.draft.name}.yaml", self.wizard.state_root), done)

    def action_next(self) -> None:
        if not self.query_one("#next", Button).disabled:
            self.draft.finish()  # the saved profile is what preflight, install and resume read
        super().action_next()
