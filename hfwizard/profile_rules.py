"""Rules across a profile section's fields that read better apart from the model: what an ingress class can serve."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hfwizard.profile import Tls

# What each Secret-based TLS source comes down to, for the message an ALB's refusal gives.
_SECRET_SOURCES = {
    "existingSecret": "a Kubernetes TLS Secret",
    "certificate": "a certificate and key (they become a Kubernetes TLS Secret)",
    "privateKey": "a certificate and key (they become a Kubernetes TLS Secret)",
    "issuer": "a cert-manager issuer (it writes a Kubernetes TLS Secret)",
}


def unusable_tls_source(class_name: str | None, tls: Tls, cloud: str | None = None) -> str | None:
    """"tls.<field>: why" when the TLS source given is one the ingress class cannot serve, else None.

    An ALB (class alb) terminates TLS only with an ACM certificate and never reads a Kubernetes Secret,
    which an existing Secret, a certificate and key, and cert-manager all come down to; every other class
    serves a Secret and cannot use ACM. On AWS (`cloud` "aws") the platform's Ingress is an ALB whatever
    the class says (hfwizard.platform.ingress makes it one).
    """
    forced = cloud == "aws" and (class_name or "") != "alb"
    cls = "alb" if cloud == "aws" else class_name or ""
    if tls.acm_certificate_arn and cls != "alb":
        return (f"tls.acmCertificateArn: an ACM certificate is served only by an AWS load balancer: set "
                f"the ingress class to alb (it is {cls or 'empty'}), or choose another certificate source")
    if cls != "alb":
        return None
    given = {"existingSecret": tls.existing_secret, "certificate": tls.certificate,
             "privateKey": tls.private_key, "issuer": tls.issuer}
    field = next((f for f, v in given.items() if v), None)
    if field is None:
        return None
    where = " (on AWS the platform's Ingress is an ALB, whatever ingress.className says)" if forced else ""
    return (f"tls.{field}: the alb ingress class (AWS Load Balancer Controller) takes TLS only from an ACM "
            f"certificate and cannot use {_SECRET_SOURCES[field]}{where}: give an ACM certificate ARN instead"
            + ("" if forced else ", or choose another ingress class"))
