"""Ingress and TLS: the platform's public host name, ingress class and where its certificate comes from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
        yield from self.compose_questions()

    def after_section(self, section: str) -> Iterable[Any]:
        # "Exactly one TLS source" is a rule over the section: its problem shows under the heading.
        yield ErrorLine("ingress.tls")
