"""Every question the wizard asks, once: path, label, help, kind and when it applies.

The Textual screens and plain mode both render this list, so a question exists in both or in neither
(tests/test_questions.py walks it through each). Whether a field is secret (a reference, its input
masked) comes from the profile model (`hfwizard.profile.secret_paths`), never from the field's name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from hfwizard import requirements as req
from hfwizard.draft import STEPS, effective

Kind = Literal["str", "int", "float", "list", "bool", "choice"]
CLOUDS = ("aws", "gcp", "azure")
ANYWHERE = (*CLOUDS, "existing", "sandbox")
NOT_SANDBOX = (*CLOUDS, "existing")


@dataclass(frozen=True)
class Question:
    """One profile path asked of the operator.

    `label` sits beside the field on its screen (under the step's `section` heading, when it has one);
    `prompt` is plain mode's whole question (default: the label). `clouds` are the targets it applies
    to; `needs` names a yes/no answer that must be on for it to apply (the TLS sources need TLS): plain
    mode then skips it, the screen shows it beside that switch.
    """

    step: str
    path: str
    label: str
    prompt: str = ""
    help: str = ""
    kind: Kind = "str"
    choices: Callable[[], tuple[str, ...]] | None = None
    clouds: tuple[str, ...] = ANYWHERE
    needs: str | None = None
    section: str = ""
    unit: str = ""
    placeholder: str = ""
    ranged: bool = False  # the screen shows the model's allowed range beside the label

    @property
    def question(self) -> str:
        return self.prompt or self.label

    @property
    def secret(self) -> bool:
        """The model says this field holds a secret reference (env:, file:, keyring:, k8s:)."""
        return self.path in _secret_paths()

    @property
    def input_kind(self) -> str:
        """How typed text becomes a value (hfwizard.draft.from_text): "ref" for a secret field."""
        return "ref" if self.secret else self.kind

    def options(self) -> tuple[str, ...]:
        return self.choices() if self.choices is not None else ()

    def applies(self, data: dict[str, Any]) -> bool:
        """Whether the answers so far make this question apply (the cloud, and the switch it needs)."""
        if effective(data, "target.cloud") not in self.clouds:
            return False
        return self.needs is None or bool(effective(data, self.needs))


@functools.cache
def _secret_paths() -> frozenset[str]:
    from hfwizard.profile import secret_paths

    return frozenset(secret_paths())


def _clouds() -> tuple[str, ...]:
    from hfwizard.profile import Cloud

    return tuple(c.value for c in Cloud)


def _presets() -> tuple[str, ...]:
    from hfwizard.profile_io import preset_names

    return tuple(preset_names())


def _providers() -> tuple[str, ...]:
    from hfwizard.platform.settings import ModelProviderName

    return tuple(p.value for p in ModelProviderName)


def _modules() -> Iterator[Question]:
    from hfwizard.profile import MODULE_TITLES

    for name, title in MODULE_TITLES.items():
        base = f"modules.{name.value}"
        yield Question("modules", f"{base}.enabled", title, f"Enable {title}?", kind="bool")
        yield Question("modules", f"{base}.replicas", "replicas", f"{title}: replicas", kind="int",
                       needs=f"{base}.enabled", help="the starting count when autoscaling is on")
    q = Question
    lic, model, images = "Highflame license", "Model provider (red teaming, MCP gateway)", "Images"
    yield q("modules", "platform.license.jwt", "License file (ref)", "License token reference (file:PATH to "
            "license.jwt; empty: later)", section=lic, placeholder="file:/path/license.jwt")
    yield q("modules", "platform.license.publicKey", "License key (ref)", "License public key reference (file:PATH "
            "to public.pem; empty: later)", section=lic, placeholder="file:/path/public.pem")
    yield q("modules", "platform.model.provider", "Provider", "Model provider", kind="choice", choices=_providers,
            section=model)
    yield q("modules", "platform.model.name", "Model name", "Model name at the provider (empty: each service's "
            "default)", section=model, placeholder="gpt-4o")
    yield q("modules", "platform.model.apiKey", "API key (ref)", "Model provider API key reference (env:NAME, "
            "file:PATH; empty: none)", section=model, placeholder="env:OPENAI_API_KEY")
    yield q("modules", "platform.model.apiBase", "Endpoint URL", "Model provider endpoint (empty: the provider's)",
            section=model, placeholder="https://…")
    yield q("modules", "images.mirror", "Registry mirror", "Registry mirror for every image (host[:port][/path]; "
            "empty: ghcr.io)", section=images, placeholder="mirror.example.com:5000/ghcr")


def _where() -> tuple[Question, ...]:
    q = Question
    return (
        q("target", "target.cloud", "Where will Highflame run?", kind="choice", choices=_clouds),
        q("target", "target.namespace", "Namespace", help="lowercase letters, digits and dashes"),
        q("target", "target.release", "Helm release name", help="lowercase letters, digits and dashes"),

        q("credentials", "credentials.aws.profile", "AWS profile", "AWS profile (empty: environment)",
          clouds=("aws",)),
        q("credentials", "credentials.aws.roleArn", "Role to assume", "AWS role ARN to assume (empty: none)",
          clouds=("aws",)),
        q("credentials", "credentials.gcp.project", "GCP project id", clouds=("gcp",)),
        q("credentials", "credentials.gcp.serviceAccountKey", "Service-account key (ref)",
          "GCP service-account key reference (env:NAME, file:PATH; empty: application default)",
          clouds=("gcp",)),
        q("credentials", "credentials.azure.subscriptionId", "Subscription id", "Azure subscription id",
          clouds=("azure",)),
        q("credentials", "credentials.azure.tenantId", "Tenant id", "Azure tenant id (empty: the login's)",
          clouds=("azure",)),
        q("credentials", "credentials.azure.resourceGroup", "Resource group",
          "Azure resource group (empty: search all)", clouds=("azure",)),

        q("cluster", "target.region", "Region", clouds=CLOUDS),
        q("cluster", "target.cluster", "Cluster name", clouds=CLOUDS),
        q("cluster", "target.kubeconfig", "Kubeconfig file", "Kubeconfig file (empty: default)",
          clouds=("existing",), placeholder="~/.kube/config"),
        q("cluster", "target.context", "Context", "Context (empty: current)", clouds=("existing",)),
    )


def _data() -> tuple[Question, ...]:
    q = Question
    pg, rd, ch = "PostgreSQL", "Redis cluster", "ClickHouse backups"
    return (
        q("data", "postgres.host", "Host", "PostgreSQL host", clouds=NOT_SANDBOX, section=pg),
        q("data", "postgres.port", "Port", "PostgreSQL port", kind="int", clouds=NOT_SANDBOX, section=pg,
          ranged=True),
        q("data", "postgres.database", "Database", "PostgreSQL database", clouds=NOT_SANDBOX, section=pg),
        q("data", "postgres.user", "User", "PostgreSQL user", clouds=NOT_SANDBOX, section=pg),
        q("data", "postgres.password", "Password (reference)",
          "PostgreSQL password reference (env:NAME, file:PATH)", clouds=NOT_SANDBOX, section=pg,
          placeholder="env:PGPASSWORD"),
        q("data", "postgres.sslmode", "TLS mode", "PostgreSQL TLS mode (verify-full, verify-ca, require, …)",
          clouds=NOT_SANDBOX, section=pg),
        q("data", "redis.endpoints", "Endpoints (host:port, …)", "Redis endpoints (host:port, comma separated)",
          kind="list", clouds=NOT_SANDBOX, section=rd),
        q("data", "redis.password", "AUTH token (reference)", "Redis AUTH reference (empty: none)",
          clouds=NOT_SANDBOX, section=rd, placeholder="env:REDIS_AUTH"),
        q("data", "clickhouse.backup.provider", "Provider (s3, gcs, azure)", "Backup provider (s3, gcs, azure)",
          clouds=NOT_SANDBOX, section=ch),
        q("data", "clickhouse.backup.bucket", "Bucket", "Backup bucket", clouds=NOT_SANDBOX, section=ch),
    )


def _sizing() -> tuple[Question, ...]:
    q = Question
    cores, mem = req.span(req.WORKER_CORES), req.span(req.WORKER_MEMORY_GIB)
    return (
        q("sizing", "sizing.preset", "Sizing preset", kind="choice", choices=_presets),
        q("sizing", "sizing.nodes.count", "Worker nodes", f"Worker nodes (at least {req.WORKERS_MIN})",
          kind="int", ranged=True),
        q("sizing", "sizing.nodes.cores", "Cores per node", f"Cores per node ({cores})", kind="int", ranged=True),
        q("sizing", "sizing.nodes.memoryGiB", "Memory per node", f"Memory per node in GiB ({mem})", kind="int",
          unit=" GiB", ranged=True),
        q("sizing", "sizing.redis.memoryGiBPerNode", "Memory per Redis node",
          f"Memory per Redis node in GiB (at least {req.REDIS_MEMORY_GIB_MIN})", kind="float", unit=" GiB",
          ranged=True),
        q("sizing", "sizing.postgres.vcpu", "PostgreSQL vCPUs",
          f"PostgreSQL vCPUs (at least {req.POSTGRES_VCPU_MIN})", kind="int", ranged=True),
        q("sizing", "sizing.postgres.memoryGiB", "PostgreSQL memory",
          f"PostgreSQL memory in GiB (at least {req.POSTGRES_MEMORY_GIB_MIN})", kind="int", unit=" GiB",
          ranged=True),
        q("sizing", "sizing.nodeGroups.label", "Node group label", "Node label naming a node group",
          section="Node groups"),
        q("sizing", "sizing.nodeGroups.general", "General group", "Node group for most services",
          section="Node groups"),
        q("sizing", "sizing.nodeGroups.gpu", "GPU group", "Node group for the guardrail models (GPU)",
          section="Node groups"),
    )


def _access() -> tuple[Question, ...]:
    q = Question
    tls = "TLS certificate: one of these"
    return (
        q("clerk", "clerk.publishableKey", "Publishable key", "Clerk publishable key (pk_live_… / pk_test_…)",
          placeholder="pk_live_…"),
        q("clerk", "clerk.secretKey", "Secret key (reference)",
          "Clerk secret key reference (env:NAME, file:PATH; empty: later)", placeholder="env:CLERK_SECRET_KEY"),

        q("ingress", "ingress.enabled", "Create an Ingress", "Create an Ingress?", kind="bool"),
        q("ingress", "ingress.domain", "Domain", "Public domain of the platform", placeholder="highflame.example.com"),
        q("ingress", "ingress.className", "Ingress class"),
        q("ingress", "ingress.tls.enabled", "Serve TLS", "Serve TLS?", kind="bool"),
        q("ingress", "ingress.tls.existingSecret", "Existing TLS Secret", "Existing TLS Secret (empty: none)",
          needs="ingress.tls.enabled", section=tls),
        q("ingress", "ingress.tls.certificate", "Certificate (reference)",
          "TLS certificate reference (file:PATH; empty: none)", needs="ingress.tls.enabled", section=tls,
          placeholder="file:/path/tls.crt"),
        q("ingress", "ingress.tls.privateKey", "Private key (reference)",
          "TLS private key reference (file:PATH; empty: none)", needs="ingress.tls.enabled", section=tls,
          placeholder="file:/path/tls.key"),
        q("ingress", "ingress.tls.acmCertificateArn", "ACM certificate ARN", "ACM certificate ARN (empty: none)",
          needs="ingress.tls.enabled", section=tls),
        q("ingress", "ingress.tls.issuer", "cert-manager ClusterIssuer",
          "cert-manager ClusterIssuer (empty: none)", needs="ingress.tls.enabled", section=tls),
    )


# Where the TLS certificate comes from: (key, label, the profile paths that source fills). Both front ends
# ask the source as one choice and then only its fields, so "exactly one source" holds by construction
# (the model still judges it: ingress.tls in hfwizard.profile).
TLS_SOURCES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("secret", "An existing TLS Secret", ("ingress.tls.existingSecret",)),
    ("files", "Certificate and key files", ("ingress.tls.certificate", "ingress.tls.privateKey")),
    ("acm", "AWS ACM certificate (ALB)", ("ingress.tls.acmCertificateArn",)),
    ("issuer", "cert-manager ClusterIssuer", ("ingress.tls.issuer",)),
)
TLS_SOURCE_PROMPT = "Where does the TLS certificate come from?"
TLS_SOURCE_OF = {path: key for key, _, paths in TLS_SOURCES for path in paths}


def tls_source(data: dict[str, Any]) -> str | None:
    """The TLS source the answers name (the first one, when several were given by hand), else None."""
    return next((key for key, _, paths in TLS_SOURCES if any(effective(data, p) for p in paths)), None)


@functools.cache
def all_questions() -> tuple[Question, ...]:
    """Every question, in the order the steps ask them (built on first use: it reads the profile model)."""
    found = (*_where(), *_data(), *_sizing(), *_modules(), *_access())
    assert all(q.step in STEPS for q in found), "a question names a step hfwizard.draft.STEPS lacks"
    return found


def for_step(step: str) -> tuple[Question, ...]:
    """The questions of one step, in order (whether each applies is `Question.applies`)."""
    return tuple(q for q in all_questions() if q.step == step)


def by_path(path: str) -> Question:
    """The question for a profile path (KeyError when none asks it)."""
    for q in all_questions():
        if q.path == path:
            return q
    raise KeyError(path)
