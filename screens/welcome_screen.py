"""Welcome: find saved or interrupted installs and offer Resume, Start over or Export; or begin a new one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from hfwizard.draft import Draft
from hfwizard.installs import Install, list_installs

if TYPE_CHECKING:
    from .app import WizardApp

STEP_TITLES = {"target": "Target", "credentials": "Credentials", "cluster": "Cluster", "data": "Data services",
               "sizing": "Sizing", "modules": "Modules", "clerk": "Clerk", "ingress": "Ingress and TLS",
               "review": "Review", "preflight": "Preflight"}


def describe(inst: Install) -> str:
    state = inst.state()
    if state == "new":
        if inst.has_draft():
            step = Draft.saved_step(inst.root, inst.name)
            return f"answers saved, at {STEP_TITLES.get(step, step)}"
        return "no answers yet"
    return {"interrupted": "install interrupted: resumable", "failed": "install failed: resumable",
            "done": "installed"}.get(state, state)


def newest(installs: list[Install]) -> Install:
    """The install touched last (its answers, position or journal), which the Welcome screen selects."""

    def touched(inst: Install) -> float:
        try:
            return max((f.stat().st_mtime for f in inst.path.iterdir()), default=0.0)
        except OSError:
            return 0.0

    return max(installs, key=touched)


class WelcomeScreen(Screen[None]):
    TITLE = "Welcome"
    HELP = """\
**hfwizard** installs the Highflame platform into your Kubernetes cluster.

* **Resume** carries on with the selected install: back to the step you were on, or, when its install
  was interrupted, the install itself from where it stopped.
* **Start over** forgets the selected install's answers (the cluster is not touched).
* **Export** writes the selected install's profile (secret references only) for a headless
  `hfwizard install --profile FILE`.
* **Status** shows the selected install's platform live (replicas, images, charts, ClickHouse, ingress,
  DNS); **Support bundle** writes a masked archive for support; **Upgrade** and **Uninstall** leave
  the full screen and run `hfwizard upgrade|uninstall NAME` in the terminal, which asks first.
* **New install**: give a short name (lowercase letters, digits, dashes); it names the install's
  state folder.

Keys: Tab / Shift+Tab move, Enter presses, Ctrl+N next, Ctrl+B back, F1 help, Ctrl+Q quit.
"""
    CSS_PATH = Path(__file__).parent / "welcome_screen.tcss"
    BINDINGS: ClassVar = [Binding("ctrl+n", "new", "New install", priority=True)]

    # The buttons under the install list, in order: (button id, label). Each calls `do_<id>` (dashes as
    # underscores) with the selected install; a new action is one entry here and one method.
    INSTALL_ACTIONS: ClassVar[list[tuple[str, str]]] = [
        ("resume", "Resume"), ("export", "Export"), ("start-over", "Start over")]

    def __init__(self) -> None:
        super().__init__(id="welcome-screen")
        self.installs: list[Install] = []

    @property
    def wizard(self) -> WizardApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        self.installs = list_installs(self.wizard.state_root)
        yield Static("Highflame installer", id="step-title")
        with Vertical(id="welcome-body"):
            yield Static("Install the Highflame AI-security platform on your Kubernetes cluster "
                         "(AWS, GCP, Azure, an existing cluster, or a local sandbox).", classes="intro")
            if self.installs:
                yield Label("Installs found in the state folder:")
                yield OptionList(*[Option(f"{i.name:<20} {describe(i)}", id=i.name) for i in self.installs],
                                 id="installs")
                with Horizontal(classes="buttons"):
                    for action_id, label in self.INSTALL_ACTIONS:
                        yield Button(label, id=action_id, variant="primary" if action_id == "resume" else "default")
                with Horizontal(classes="buttons", id="day-two"):
                    yield Button("Status", id="day-status")
                    yield Button("Support bundle", id="day-bundle")
                    yield Button("Upgrade", id="day-upgrade")
                    yield Button("Uninstall", id="day-uninstall")
            with Horizontal(classes="field-line"):
                yield Label("New install name", classes="field-label")
                yield Input(self._free_name(), id="new-name", classes="field")
            yield Static("", id="e-new-name", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("New install", id="new", variant="default" if self.installs else "primary")
        yield Footer()

    def _free_name(self) -> str:
        taken = {i.name for i in self.installs}
        if "highflame" not in taken:
            return "highflame"
        n = 2
        while f"highflame-{n}" in taken:
            n += 1
        return f"highflame-{n}"

    def on_mount(self) -> None:
        if self.installs:
            options = self.query_one("#installs", OptionList)
            options.highlighted = self.installs.index(newest(self.installs))
            self.query_one("#resume", Button).focus()
        else:
            self.query_one("#new-name", Input).focus()

    def selected(self) -> Install | None:
        if not self.installs:
            return None
        idx = self.query_one("#installs", OptionList).highlighted
        return self.installs[idx] if idx is not None else None

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.value == self._free_name():
            # Our own proposal (the Input reports it as it mounts) is free and well formed by
            # construction: no need to build the profile model before the first screen shows.
            self.query_one("#e-new-name", Static).update("")
            self.query_one("#new", Button).disabled = False
            return
        self._name_problem(event.value)

    def _name_problem(self, name: str) -> str | None:
        # The profile model is imported on the first keystroke, not before the screen shows.
        from pydantic import ValidationError

        from hfwizard.profile import Metadata
        from hfwizard.profile_io import format_errors

        problem = None
        try:
            Metadata(name=name)
        except ValidationError as exc:
            problem = format_errors(exc, Metadata)[0]
        if problem is None and any(i.name == name for i in self.installs):
            problem = f"an install named {name} exists: select it above and Resume or Start over"
        self.query_one("#e-new-name", Static).update(f"✗ {problem}" if problem else "")
        self.query_one("#new", Button).disabled = problem is not None
        return problem

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_new()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.resume()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "new":
            self.action_new()
            return
        button = event.button.id or ""
        if button.startswith("day-"):
            self.day_two(button.removeprefix("day-"))
            return
        handler = getattr(self, f"do_{button.replace('-', '_')}", None)
        inst = self.selected()
        if handler is not None and inst is not None:
            handler(inst)

    def do_resume(self, inst: Install) -> None:
        self.resume()

    def do_export(self, inst: Install) -> None:
        self.export()

    def do_start_over(self, inst: Install) -> None:
        from .confirm_modal import ConfirmModal

        def answered(yes: bool | None) -> None:
            if yes:
                self.wizard.open_draft(inst.name, fresh=True)
                self.wizard.show("target")

        self.app.push_screen(ConfirmModal(
            f"Start over with {inst.name}?",
            f"The saved answers of {inst.name} are forgotten and the wizard starts again at Target. "
            "The cluster and the install's journal are not touched.", "Start over"), answered)

    def action_new(self) -> None:
        name = self.query_one("#new-name", Input).value.strip()
        if self._name_problem(name) is None:
            self.wizard.open_draft(name, fresh=True)
            self.wizard.show("target")

    def resume(self) -> None:
        inst = self.selected()
        if inst is None:
            return
        draft = self.wizard.open_draft(inst.name)
        if inst.state() in ("interrupted", "failed"):
            # The Install screen's run resumes by itself: the engine reads the install's journal.
            self.wizard.show("install")
        else:
            self.wizard.show(draft.step)

    def export(self) -> None:
        from .export_modal import ExportModal

        inst = self.selected()
        if inst is None:
            return
        from pydantic import ValidationError

        draft = Draft.load(self.wizard.state_root, inst.name)
        try:
            profile = draft.profile()
        except ValidationError as exc:
            self.notify(f"{inst.name}: the answers are not complete yet ({len(exc.errors())} problems); "
                        "Resume and finish them first", severity="error")
            return

        def done(path: Path | None) -> None:
            if path is not None:
                self.notify(f"wrote {path}\nreplay it headless: hfwizard install --profile {path} --yes",
                            timeout=12)

        self.app.push_screen(ExportModal(profile, f"{inst.name}.yaml"), done)


    # ---- day two on an installed platform ---------------------------------------------------------

    def day_two(self, action: str) -> None:
        """Status and the support bundle run here, in a thread; upgrade and uninstall change the cluster,
        so the wizard hands them to the terminal (`hfwizard upgrade|uninstall NAME`, with its own
        confirmation and progress) once the full-screen UI has closed."""
        inst = self.selected()
        if inst is None:
            return
        if inst.state() == "new":
            self.notify(f"{inst.name} is not installed yet: Resume it first", severity="warning")
            return
        if action in ("upgrade", "uninstall"):
            self.app.day_two = (action, inst.name)  # type: ignore[attr-defined]  # read by the CLI after exit
            self.app.exit(0)
            return
        self.notify(f"{inst.name}: {'reading the platform' if action == 'status' else 'writing the bundle'}...")
        self.run_worker(lambda: self._day_two_report(action, inst.path), thread=True, group="day-two",
                        exit_on_error=False)

    def _day_two_report(self, action: str, path: Path) -> None:
        import asyncio

        from hfwizard import operations

        try:
            if action == "status":
                report = asyncio.run(operations.platform_status(path, check_dns=True))
                lines = [*report.status.lines(), *report.dns]
            else:
                _, line = asyncio.run(operations.support_bundle(path, reason="asked for in the wizard"))
                lines = [line]
        except Exception as exc:  # shown, never swallowed: the worker runs with exit_on_error=False
            lines = [f"{path.name}: {action} failed: {exc}"]
        self.app.call_from_thread(self.notify, "\n".join(lines), timeout=30)
