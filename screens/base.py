"""The step screen every wizard step builds on: fields bound to profile paths, problems beside them, Back / Next."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Input, Label, RadioButton, RadioSet, Static
from textual.worker import Worker, WorkerState

from hfwizard.draft import OWNED, Draft, Problem, effective, field_range, from_text, step_problems
from hfwizard.questions import Question, for_step

if TYPE_CHECKING:
    from .app import WizardApp

CSS_DIR = Path(__file__).parent


def slug(path: str) -> str:
    """A kebab-case widget id from a profile path or a check / step id (`postgres/reachable`)."""
    return re.sub(r"[^a-z0-9-]+", "-", path.lower())


def looks_like_ref(text: str) -> bool:
    kind, sep, _ = text.partition(":")
    return bool(sep) and kind in ("env", "file", "keyring", "k8s")


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def range_hint(path: str, unit: str = "") -> str:
    lo, hi = field_range(path)
    if lo is not None and hi is not None and hi <= 65535:
        return f"{lo:g}–{hi:g}{unit}"
    if lo is not None:
        return f"at least {lo:g}{unit}"
    return ""


class ErrorLine(Static):
    """Problems for one profile path (a field, or a section such as one module)."""

    def __init__(self, path: str) -> None:
        super().__init__("", id=f"e-{slug(path)}", classes="error", markup=False)
        self.path = path
        self.display = False

    def show(self, reasons: list[str]) -> None:
        self.update("\n".join(f"✗ {r}" for r in reasons))
        self.display = bool(reasons)


class FieldInput(Input):
    """An Input bound to a profile path; `kind` says how its text becomes a value."""

    def __init__(self, path: str, kind: str = "str", value: str = "", placeholder: str = "") -> None:
        super().__init__(value=value, placeholder=placeholder, id=f"f-{slug(path)}", classes="field")
        self.path = path
        self.kind = kind
        if kind == "ref":
            # A secret field holds a reference; anything else typed there may be a pasted secret: mask it.
            self.password = bool(value) and not looks_like_ref(value)


def no_colour() -> bool:
    """NO_COLOR is set (https://no-color.org): a choice must then read by its glyph, not its shade."""
    return bool(os.environ.get("NO_COLOR"))


class Choice(RadioButton):
    """A radio button that shows ◉ / ○ without colour, where the chosen one otherwise differs by shade only."""

    @property
    def _button(self) -> Content:
        return Content("◉" if self.value else "○") if no_colour() else super()._button


class FieldCheckbox(Checkbox):
    """A Checkbox bound to a yes/no profile path; StepScreen records its answer."""

    @property
    def _button(self) -> Content:
        return Content("[x]" if self.value else "[ ]") if no_colour() else super()._button

    def __init__(self, path: str, label: str, value: bool, *, id: str, classes: str = "module-on") -> None:
        super().__init__(label, value, id=id, classes=classes)
        self.path = path


class FieldRadioSet(RadioSet):
    """A RadioSet bound to a choice profile path (its screen turns the pressed button into the answer)."""

    def __init__(self, *buttons: Any, path: str, id: str) -> None:
        super().__init__(*buttons, id=id)
        self.path = path


class FieldRow(Vertical):
    """Label, input and the reasons it is refused."""

    DEFAULT_CSS = "FieldRow { height: auto; }"

    def __init__(self, path: str, label: str, value: Any, *, kind: str = "str", hint: str = "",
                 placeholder: str = "") -> None:
        super().__init__(classes="field-row")
        self.path = path
        self._label = label + (f" ({hint})" if hint else "")
        self._input = FieldInput(path, kind, to_text(value), placeholder)

    @property
    def field_input(self) -> FieldInput:
        return self._input

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-line"):
            yield Label(self._label, classes="field-label")
            yield self._input
        yield ErrorLine(self.path)


class StepScreen(Screen[None]):
    """A wizard step: the body comes from `compose_body`, answers go to the draft as they are typed."""

    STEP: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    HELP: ClassVar[str] = ""
    NEXT_LABEL: ClassVar[str] = "Next"
    CSS_PATH = CSS_DIR / "base.tcss"
    BINDINGS: ClassVar = [
        Binding("ctrl+n", "next", "Next", priority=True),
        Binding("ctrl+b", "back", "Back", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__(id=f"{self.STEP}-screen")
        self.busy: dict[str, str] = {}  # worker group -> what it is doing, for the status line

    @property
    def wizard(self) -> WizardApp:
        return self.app  # type: ignore[return-value]

    @property
    def draft(self) -> Draft:
        assert self.wizard.draft is not None
        return self.wizard.draft

    def value(self, path: str) -> Any:
        """What a field shows: the answer so far, else the preset's or the model's default."""
        return effective(self.draft.data, path)

    def field(self, path: str, label: str, *, kind: str = "str", unit: str = "", placeholder: str = "",
              ranged: bool = False) -> FieldRow:
        hint = range_hint(path, unit) if ranged else unit.strip()
        return FieldRow(path, label, self.value(path), kind=kind, hint=hint, placeholder=placeholder)

    def question_field(self, q: Question) -> FieldRow:
        row = self.field(q.path, q.label, kind=q.input_kind, unit=q.unit, placeholder=q.placeholder,
                         ranged=q.ranged)
        if q.help:
            row.field_input.tooltip = q.help  # shown on hover: the screen's layout stays as it is
        return row

    def questions(self) -> list[Question]:
        """This step's questions for the chosen target (hfwizard.questions). A question that needs a
        switch is shown beside it, whatever the switch says, so ticking it shows no new fields."""
        cloud = self.value("target.cloud")
        return [q for q in for_step(self.STEP) if cloud in q.clouds]

    def compose_questions(self, which: Callable[[Question], bool] | None = None) -> Iterable[Any]:
        """The step's questions (those `which` keeps) as fields: yes/no ones as checkboxes, choices as
        radio buttons, each section under its heading."""
        section = ""
        for q in self.questions():
            if which is not None and not which(q):
                continue
            if q.section != section:
                section = q.section
                yield Static(section, classes="section")
                yield from self.after_section(section)
            if q.kind == "bool":
                parts = q.path.split(".")
                yield FieldCheckbox(q.path, q.label, bool(self.value(q.path)), id=f"{slug(parts[-2])}-{parts[-1]}")
            elif q.kind == "choice":
                yield from self.choice_field(q)
            else:
                yield self.question_field(q)

    def choice_field(self, q: Question) -> Iterable[Any]:
        """A choice as radio buttons under its label; the pressed one is the answer (see on_radio_set_changed)."""
        current = self.value(q.path)
        yield Label(q.label, classes="choice-label")
        with FieldRadioSet(path=q.path, id=f"f-{slug(q.path)}"):
            for choice in q.options():
                yield Choice(choice, value=current == choice, id=f"{slug(q.path)}-{slug(choice)}")
        yield ErrorLine(q.path)

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        # Textual calls this for subclasses' own radio sets too: answer only those choice_field made.
        radios = event.radio_set
        if isinstance(radios, FieldRadioSet) and radios.id == f"f-{slug(radios.path)}" and event.pressed is not None:
            self.answer(radios.path, str(event.pressed.label))

    def after_section(self, section: str) -> Iterable[Any]:
        """Widgets right under a section's heading (a section-wide problem line)."""
        return ()

    def compose(self) -> ComposeResult:
        yield Static(self.heading(), id="step-title", markup=False)
        # The body scrolls to whichever field has focus; it takes no focus itself, so the first key
        # a screen gets goes to its first question.
        with VerticalScroll(id="body", can_focus=False):
            yield from self.compose_body()
        yield Static("", id="problems", markup=False)
        with Horizontal(id="nav"):
            yield Button("Back", id="back")
            yield Static("", id="nav-status", markup=False)
            yield Button(self.NEXT_LABEL, id="next", variant="primary")
        yield Footer()

    def heading(self) -> str:
        from .app import ORDER

        n = ORDER.index(self.STEP) if self.STEP in ORDER else 0
        return f"Step {n} of {len(ORDER) - 1} · {self.TITLE}"

    def compose_body(self) -> Iterable[Any]:
        return ()

    def on_mount(self) -> None:
        from textual.widgets import RadioSet

        for radios in self.query(RadioSet):
            # RadioSet highlights its first button on mount; start on the chosen one so arrow keys
            # move from the current answer (no public setter in Textual 8.2).
            if radios.pressed_index >= 0:
                radios._selected = radios.pressed_index
        self.revalidate()
        path, self.wizard.focus_path = self.wizard.focus_path, None
        for inp in self.query(FieldInput):
            if path is not None and inp.path == path:
                self.call_after_refresh(inp.focus)  # Edit answer: to the field at fault (after auto-focus)

    # ---- answers ---------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if isinstance(event.input, FieldInput):
            if event.input.kind == "ref":
                event.input.password = bool(event.value) and not looks_like_ref(event.value)
            value = from_text(event.input.kind, event.value)
            if self.draft.get(event.input.path) is None and value == self.value(event.input.path):
                return  # the shown default (or preset value) is not an answer: a later preset still applies
            self.answer(event.input.path, value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.focus_next()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if isinstance(event.checkbox, FieldCheckbox):
            self.answer(event.checkbox.path, event.value)

    def answer(self, path: str, value: Any) -> None:
        self.draft.set(path, value)
        self.revalidate()

    def show_value(self, path: str, value: Any) -> None:
        """Put `value` in the field for `path` without it counting as typed (for answers set in code)."""
        for inp in self.query(FieldInput):
            if inp.path == path:
                with inp.prevent(inp.Changed):
                    inp.value = to_text(value)

    def refresh_fields(self) -> None:
        """Show in every field what the draft now holds (answers, preset or default), then revalidate."""
        for inp in self.query(FieldInput):
            with inp.prevent(inp.Changed):
                inp.value = to_text(self.value(inp.path))
        self.revalidate()

    def extra_problems(self) -> list[str]:
        """Reasons beyond the model's that hold Next (a step's own pending work)."""
        return []

    def problems(self) -> list[Problem]:
        return step_problems(self.draft.data, self.STEP) if self.STEP in OWNED else []

    def revalidate(self) -> None:
        found = self.problems()
        lines = {e.path: e for e in self.query(ErrorLine)}
        placed: dict[str, list[str]] = {p: [] for p in lines}
        loose: list[str] = []
        for prob in found:
            owner = max((p for p in lines if prob.path == p or prob.path.startswith((p + ".", p + "["))),
                        key=len, default=None)
            if owner is None:
                loose.append(prob.line)
            elif prob.path == owner:
                placed[owner].append(prob.reason)
            else:  # a part of the field (a list item, a module's replicas): say which part
                placed[owner].append(f"{prob.path[len(owner):].lstrip('.')}: {prob.reason}")
        for path, line in lines.items():
            line.show(placed[path])
        extra = self.extra_problems()
        box = self.query_one("#problems", Static)
        box.update("\n".join(f"✗ {line}" for line in [*loose, *extra]))
        box.display = bool(loose or extra)
        self.query_one("#next", Button).disabled = bool(found or extra)
        self._status()
        self.draft.save({p.path for p in found if p.path})

    def _status(self) -> None:
        self.query_one("#nav-status", Static).update(" · ".join(f"{v}…" for v in self.busy.values()))

    # ---- navigation ------------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "next":
            event.stop()
            self.action_next()
        elif event.button.id == "back":
            event.stop()
            self.action_back()

    def action_next(self) -> None:
        # Keys can outrun the Changed messages they caused (a paste, then Ctrl+N at once): take what
        # the fields show now, so Next judges the answers on screen, not the last ones processed.
        for inp in self.query(FieldInput):
            value = from_text(inp.kind, inp.value)
            if value != self.value(inp.path):
                self.answer(inp.path, value)
        if not self.query_one("#next", Button).disabled:
            self.leave()
            if self.STEP == "review":
                self.wizard.back_to_review = False
            if self.wizard.back_to_review and self.STEP in OWNED and self.STEP != "review":
                self.wizard.show("review")  # an answer fixed after a failure: check the whole, then retry
                return
            self.wizard.next_step(self.STEP)

    def action_back(self) -> None:
        self.leave()
        self.wizard.prev_step(self.STEP)

    def leave(self) -> None:
        """Called before the step is left; steps with work in flight cancel it here."""
        self.workers.cancel_all()

    # ---- background work -------------------------------------------------------------------------

    def start_busy(self, group: str, what: str) -> None:
        self.busy[group] = what
        self._status()

    def end_busy(self, group: str) -> None:
        self.busy.pop(group, None)
        if self.is_mounted:
            self._status()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state in (WorkerState.SUCCESS, WorkerState.CANCELLED, WorkerState.ERROR):
            self.end_busy(event.worker.group)
        if event.state is WorkerState.ERROR:
            err = event.worker.error
            msg = getattr(err, "message", None) or f"{type(err).__name__}: {err}"
            self.worker_failed(event.worker.group, str(msg))

    def worker_failed(self, group: str, message: str) -> None:
        self.notify(message, title=f"{group} failed", severity="error", timeout=8)
