"""Credentials: the cloud credentials found on this machine, where each came from, validated live."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from textual import work
from textual.containers import Horizontal
from textual.widgets import Button, LoadingIndicator, OptionList, Static
from textual.widgets.option_list import Option

from hfwizard import operations
from hfwizard.errors import HfwizardError

from .base import StepScreen


class CredentialsScreen(StepScreen):
    STEP = "credentials"
    TITLE = "Credentials"
    HELP = """\
The wizard looks for cloud credentials on this machine: named profiles and SSO sessions in
`~/.aws/config`, application default credentials for Google Cloud, the Azure CLI login, and
credentials in the environment. It never shows or stores a secret: the profile records *which*
credential to use.

Pick one with the arrow keys and Enter; it is checked live (who it is, and whether it works).
You can also type the fields yourself. Secret fields take references only:
`env:NAME`, `file:PATH`, `keyring:SERVICE/NAME`.
"""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[Any] = []

    @property
    def cloud(self) -> str:
        return str(self.value("target.cloud"))

    def compose_body(self) -> Iterable[Any]:
        if self.cloud not in operations.CLOUDS:
            yield Static("The sandbox and existing clusters need no cloud credentials: the cluster is "
                         "reached through a kubeconfig, chosen on the next step.", classes="intro",
                         id="no-credentials")
            return
        yield Static("Credentials found on this machine (Enter to use one):", classes="intro")
        yield OptionList(id="found", classes="found")
        with Horizontal(id="validate-line"):
            yield LoadingIndicator(id="spinner")
            yield Static("", id="validation", markup=False)
        yield Button("Validate", id="validate")
        for q in self.questions():
            yield self.question_field(q)

    def on_mount(self) -> None:
        super().on_mount()
        if self.cloud in operations.CLOUDS:
            self.query_one("#spinner").display = False
            self.discover()

    @work(exclusive=True, group="discover", exit_on_error=False)
    async def discover(self) -> None:
        self.start_busy("discover", "looking for credentials")
        self.found = await asyncio.to_thread(operations.discover_credentials, self.cloud)
        box = self.query_one("#found", OptionList)
        box.clear_options()
        for i, cred in enumerate(self.found):
            box.add_option(Option(f"{cred.name} · {cred.kind} · from {cred.source}", id=str(i)))
        if not self.found:
            self.query_one("#validation", Static).update(
                "Nothing found: type the fields below, or sign in (aws sso login, gcloud auth "
                "application-default login, az login) and come back.")
        self.check_profile()

    def answer(self, path: str, value: Any) -> None:
        super().answer(path, value)
        if path == "credentials.aws.profile":
            self.check_profile()

    def check_profile(self) -> None:
        """Say in place when the AWS profile typed is not one this machine has (a cheap, local check)."""
        if self.cloud != "aws" or not self.is_mounted:
            return
        typed = self.draft.get("credentials.aws.profile")
        names = {str(c.details.get("profile")) for c in self.found if c.details.get("profile")}
        note = self.query_one("#validation", Static)
        if typed and typed not in names:
            note.update(f"! profile {typed} is not in the AWS config files → run: aws configure --profile {typed} "
                        f"(or aws configure sso)")
        elif typed and str(note.render()).startswith("! profile"):
            note.update("")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        cred = self.found[int(event.option.id or 0)]
        for path, value in operations.credential_answers(cred).items():
            self.draft.set(path, value)
        self.refresh_fields()
        self.validate(cred)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "validate":
            event.stop()
            cred = operations.credential_for(self.cloud, self.draft.data) if not self.found else None
            box = self.query_one("#found", OptionList)
            if self.found and box.highlighted is not None:
                cred = self.found[box.highlighted]
            if cred is not None:
                self.validate(cred)
            else:
                self.query_one("#validation", Static).update(
                    "✗ nothing to validate: no credential was found on this machine. Sign in (aws sso "
                    "login, gcloud auth application-default login, az login) or fill the fields, then "
                    "Validate again.")
            return
        super().on_button_pressed(event)

    @work(exclusive=True, group="validate", exit_on_error=False)
    async def validate(self, cred: Any) -> None:
        self.start_busy("validate", f"validating {cred.name}")
        spinner = self.query_one("#spinner")
        out = self.query_one("#validation", Static)
        spinner.display = True
        out.update("")
        try:
            result = await asyncio.to_thread(operations.validate_credential, cred)
        except HfwizardError as exc:
            out.update(f"✗ {exc}")
            return
        finally:
            spinner.display = False
        lines = []
        if result.identity is not None:
            lines.append(f"✓ {result.identity.principal} (account {result.identity.account})")
        lines += [("✓ " if f.ok else "✗ ") + str(f) for f in result.findings]
        out.update("\n".join(lines) or "✓ valid")
