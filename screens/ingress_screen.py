"""Ingress and TLS: the platform's public host name, ingress class and where its certificate comes from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widgets import RadioSet

from hfwizard.questions import TLS_SOURCES, tls_source

from .base import Choice, ErrorLine, FieldRow, StepScreen


class IngressScreen(StepScreen):
    STEP = "ingress"
    TITLE = "Ingress and TLS"
    HELP = """\
The platform is reached at one host name through an Ingress.

* **Domain**: the public host name (`highflame.example.com`); point its DNS at the ingress
  controller's load balancer after the install.
* **Ingress class**: `nginx`, `alb` (AWS), `gce` (GKE), `azure-application-gateway` …
* **TLS**: choose exactly one source: a `kubernetes.io/tls` Secret already in the namespace, a
  certificate and private key as references, an AWS ACM certificate ARN (ALB only), or a
  cert-manager ClusterIssuer. Only the chosen source's fields show.
"""

    def compose_body(self) -> Iterable[Any]:
        yield from self.compose_questions()

    def after_section(self, section: str) -> Iterable[Any]:
        # "Exactly one TLS source" is a rule over the section: the choice and its problem sit under the heading.
        chosen = self.source()
        with RadioSet(id="tls-source"):
            for key, label, _ in TLS_SOURCES:
                yield Choice(label, value=key == chosen, id=f"source-{key}")
        yield ErrorLine("ingress.tls")

    def source(self) -> str | None:
        """The source the answers name (the first one, when several were given by hand)."""
        return tls_source(self.draft.data)

    def on_mount(self) -> None:
        super().on_mount()
        self.show_source(self.source())

    def show_source(self, chosen: str | None) -> None:
        for key, _, paths in TLS_SOURCES:
            for row in self.query(FieldRow):
                if row.path in paths:
                    row.display = key == chosen

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        if event.radio_set.id != "tls-source" or event.pressed is None:
            return
        chosen = (event.pressed.id or "").removeprefix("source-")
        for key, _, paths in TLS_SOURCES:
            if key != chosen:
                for path in paths:
                    self.draft.set(path, None)
                    self.show_value(path, None)
        self.show_source(chosen)
        self.revalidate()
