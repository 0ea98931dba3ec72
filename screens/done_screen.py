"""Done: where the platform is, what to do next, and Export."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widgets import Button, Static

from hfwizard.profile import clerk_frontend_host

from .base import StepScreen


class DoneScreen(StepScreen):
    STEP = "done"
    TITLE = "Done"
    NEXT_LABEL = "Quit"
    HELP = """\
The platform is installed. Point the domain's DNS at the ingress controller's load balancer, add the
URL to your Clerk application's allowed origins, and keep the exported profile: it replays this
install headless (`hfwizard install --profile FILE --yes`) for a second region or a rebuild.
"""

    def compose_body(self) -> Iterable[Any]:
        p = self.draft.profile()
        scheme = "https" if p.ingress.tls.enabled else "http"
        lines = ["Highflame is installed.", ""]
        if p.ingress.enabled and p.ingress.domain:
            lines.append(f"Console:   {scheme}://{p.ingress.domain}/")
        if p.clerk.publishable_key:
            lines.append(f"Sign-in:   https://{clerk_frontend_host(p.clerk.publishable_key)}")
        lines.append(f"Namespace: {p.target.namespace}   Release: {p.target.release}")
        if p.is_sandbox:
            # A rehearsal: the URLs are what a real install would serve; nothing runs behind them.
            lines[0] = "Highflame is installed in the sandbox (a rehearsal: nothing runs)."
            lines += ["", "Next:",
                      "  1. Start a new install with your cloud or cluster as the target.",
                      "  2. Export this profile as a starting point for it.",
                      "  3. `hfwizard status` shows this install; its emulated cluster is kept with it."]
        else:
            lines += ["", "Next:",
                      f"  1. Point DNS for {p.ingress.domain or 'your domain'} at the ingress load balancer.",
                      "  2. Add the console URL to the Clerk application's allowed origins.",
                      "  3. Export the profile and keep it with your infrastructure code.",
                      "  4. `hfwizard status` shows this install; `hfwizard resume` repairs a partial one."]
        yield Static("\n".join(lines), id="done-text", markup=False)
        yield Button("Export…", id="export")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#back", Button).display = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export":
            from .export_modal import ExportModal

            event.stop()
            def done(path: Any) -> None:
                if path is not None:
                    self.notify(f"wrote {path}\nreplay it headless: hfwizard install --profile {path} --yes",
                                timeout=12)

            self.app.push_screen(ExportModal(self.draft.profile(), f"{self.draft.name}.yaml"), done)
            return
        super().on_button_pressed(event)

    def action_next(self) -> None:
        self.app.exit(0)
