"""Ingress and TLS: the platform's public host name, ingress class and where its certificate comes from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widgets import Checkbox, Static

from .base import ErrorLine, StepScreen


class IngressScreen(StepScreen):
    STEP = "ingress"
    TITLE = "Ingress and TLS"
    HELP = """\
The platform is reached at one host name through an Ingress.

* **Domain**: the public host name (`highflame.example.com`); point its DNS at the ingress
  controller's load balancer after the install.
* **Ingress class**: `nginx`, `alb` (AWS), `gce` (GKE), `azure-application-gateway` …
* **TLS**: give exactly one source: a `kubernetes.io/tls` Secret already in the namespace, a
  certificate and private key as references, an AWS ACM certificate ARN (ALB only), or a
  cert-manager ClusterIssuer.
"""

    def compose_body(self) -> Iterable[Any]:
        yield Checkbox("Create an Ingress", bool(self.value("ingress.enabled")), id="ingress-enabled",
                       classes="module-on")
        yield self.field("ingress.domain", "Domain", placeholder="highflame.example.com")
        yield self.field("ingress.className", "Ingress class")
        yield Checkbox("Serve TLS", bool(self.value("ingress.tls.enabled")), id="tls-enabled",
                       classes="module-on")
        yield Static("TLS certificate: one of these", classes="section")
        yield ErrorLine("ingress.tls")
        yield self.field("ingress.tls.existingSecret", "Existing TLS Secret")
        yield self.field("ingress.tls.certificate", "Certificate (reference)", kind="ref",
                         placeholder="file:/path/tls.crt")
        yield self.field("ingress.tls.privateKey", "Private key (reference)", kind="ref",
                         placeholder="file:/path/tls.key")
        yield self.field("ingress.tls.acmCertificateArn", "ACM certificate ARN")
        yield self.field("ingress.tls.issuer", "cert-manager ClusterIssuer")

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        path = {"ingress-enabled": "ingress.enabled", "tls-enabled": "ingress.tls.enabled"}.get(event.checkbox.id or "")
        if path:
            self.answer(path, event.value)
