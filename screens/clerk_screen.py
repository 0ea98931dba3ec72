"""Clerk: the publishable key (its frontend host shown), and the secret key as a reference or in the keyring."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from textual import work
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, Static

from hfwizard.errors import SecretError
from hfwizard.profile import clerk_frontend_host
from hfwizard.secrets import store_in_keyring

from .base import FieldInput, StepScreen, to_text

KEYRING_SERVICE = "hfwizard"


class ClerkScreen(StepScreen):
    STEP = "clerk"
    TITLE = "Clerk authentication"
    HELP = """\
Highflame signs users in with **Clerk**. From the Clerk dashboard (API keys):

* the **publishable key** (`pk_live_…` or `pk_test_…`) is public: it encodes your Clerk frontend
  host, shown below it;
* the **secret key** (`sk_live_…`) is a secret. Give a reference to where it lives
  (`env:CLERK_SECRET_KEY`, `file:/path`), or type it once below: it goes into the system keyring and
  the profile keeps only `keyring:hfwizard/…`. The wizard never shows it or writes it to a file.

Bastion hosts often have no keyring; the wizard then says so and you use an `env:` or `file:` reference.
"""

    def compose_body(self) -> Iterable[Any]:
        publishable, secret = self.questions()
        yield self.question_field(publishable)
        yield Static("", id="frontend-host", classes="note", markup=False)
        yield self.question_field(secret)
        yield Static("…or type the secret key once, to keep it in the system keyring:", classes="note")
        with Horizontal(classes="field-line"):
            yield Label("Secret key (not shown)", classes="field-label")
            yield Input(password=True, id="secret-once", classes="field")
        yield Button("Store in keyring", id="store")
        yield Static("", id="keyring-status", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.show_host()

    def answer(self, path: str, value: Any) -> None:
        before = self.draft.get(path)
        super().answer(path, value)
        if path == "clerk.publishableKey":
            self.show_host(ask=value != before)  # the field reporting its value as it mounts is no new key

    def show_host(self, ask: bool = False) -> None:
        """The host the key names; `ask` (a key just typed) also asks that host, in the background."""
        key = self.draft.get("clerk.publishableKey")
        text = ""
        if key:
            try:
                text = f"Frontend host: {clerk_frontend_host(str(key))}"
            except ValueError:
                text = ""
        self.query_one("#frontend-host", Static).update(text)
        if text and ask:
            self.check_frontend(clerk_frontend_host(str(key)))

    @work(exclusive=True, group="clerk-host", exit_on_error=False)
    async def check_frontend(self, host: str) -> None:
        """Does the key's frontend host answer? Said beside it, in the background (a warning: preflight
        checks it again from the cluster's side of the network)."""
        from hfwizard import operations

        await asyncio.sleep(0.5)  # typed key by key: ask once the typing stops (a new key cancels this)
        self.start_busy("clerk-host", f"asking {host}")
        ok, text = await asyncio.to_thread(operations.answers_https, host)
        key = self.draft.get("clerk.publishableKey")
        if key and clerk_frontend_host(str(key)) == host:
            self.query_one("#frontend-host", Static).update(f"Frontend host: {host}  " + ("✓ " if ok else "! ") + text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "secret-once":
            self.store()
        else:
            super().on_input_submitted(event)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "store":
            event.stop()
            self.store()
            return
        super().on_button_pressed(event)

    def store(self) -> None:
        box = self.query_one("#secret-once", Input)
        value = box.value
        box.value = ""  # the typed secret leaves the screen at once, whatever happens next
        if not value:
            self.query_one("#keyring-status", Static).update("✗ type the secret key first")
            return
        self.store_secret(value)

    @work(exclusive=True, group="keyring", exit_on_error=False)
    async def store_secret(self, value: str) -> None:
        self.start_busy("keyring", "storing in the keyring")
        status = self.query_one("#keyring-status", Static)
        try:
            ref = await asyncio.to_thread(store_in_keyring, KEYRING_SERVICE,
                                          f"{self.draft.name}-clerk-secret-key", value)
        except SecretError as exc:
            status.update(f"✗ {exc.message}. Put the key in an environment variable or a file (mode 0600) "
                          "and give env:NAME or file:PATH above.")
            self.query_one("#f-clerk-secretkey", FieldInput).focus()
            return
        finally:
            del value
        self.draft.set("clerk.secretKey", str(ref))
        inp = self.query_one("#f-clerk-secretkey", FieldInput)
        with inp.prevent(inp.Changed):
            inp.value = to_text(str(ref))
        status.update(f"✓ stored; the profile refers to it as {ref}")
        self.revalidate()
