"""Profile sections the real Highflame platform needs; `hfwizard/profile.py` holds them as fields.

They live here, beside the catalog that gives them meaning, so profile.py stays small. Secret fields hold
references only (`env:`, `file:`, `keyring:`, `k8s:`).
"""

from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from hfwizard.model_support import describe_fields
from hfwizard.secrets import Ref

HIGHFLAME_CHARTS: Final = "https://highflame-ai.github.io/charts"
"""Highflame's Helm chart repository (the install guide calls it `highflame-charts`)."""

ServiceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)]


class _Section(BaseModel):
    # The same conventions as profile.Section (camelCase keys, unknown keys refused, validators built on
    # first use, attribute docstrings as descriptions); kept here so this module does not import
    # profile.py, which imports it.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              validate_assignment=True, defer_build=True)


def default_of[M: BaseModel](section: type[M]) -> M:
    """A section's default instance, as a field's default, made without validating it.

    `Section()` would build the section's own validator at import (about 5 ms each, 29 sections); the
    profile is validated as a whole, so a section's own validator is built only when something uses the
    section alone. Its defaults are valid by construction (tests/test_profile.py validates them).
    """
    return section.model_construct()


class License(_Section):
    jwt: Ref | None = None
    """Highflame license token (the `license.jwt` file Highflame sends), usually file:PATH."""
    public_key: Ref | None = None
    """The license's verification key (`public.pem`), usually file:PATH."""


class ModelProviderName(StrEnum):
    OPENAI = "openai"
    AZURE = "azure"
    BEDROCK = "bedrock"
    LOCAL = "local"


class ModelProvider(_Section):
    provider: ModelProviderName = ModelProviderName.OPENAI
    """The LLM provider red teaming and Ramparts use (DEFAULT_PROVIDER)."""
    name: str | None = None
    """Model name at the provider (e.g. gpt-4o); empty: each service's own default."""
    api_key: Ref | None = None
    """The provider's API key (OpenAI or Azure OpenAI); default: platform.modelApiKeys[provider]."""
    api_base: str | None = Field(default=None, pattern=r"^https?://\S+$")
    """Endpoint of the provider (Azure OpenAI resource URL, or a local model server)."""
    api_version: str | None = None
    """Azure OpenAI API version (e.g. 2024-02-15-preview)."""
    bedrock_region: str | None = Field(default=None, pattern=r"^[a-z0-9-]+$")
    """AWS region of Bedrock, when the provider is bedrock."""
    bedrock_access_key: Ref | None = None
    """Bedrock access key id, as a reference (prefer IRSA)."""
    bedrock_secret_key: Ref | None = None
    """Bedrock secret access key, as a reference."""
    hf_token: Ref | None = None
    """Hugging Face token for gated datasets and models, as a reference."""


class NodeGroups(_Section):
    label: str = Field(default="kube/nodegroup", pattern=r"^([a-z0-9.-]+/)?[A-Za-z0-9._-]+$")
    """Node label whose value names a node group (Highflame's clusters use kube/nodegroup)."""
    general: str = "general"
    """Label value of the general-purpose node group."""
    gpu: str = "gpu"
    """Label value of the GPU node group the guardrail models (guard, guard-cm, guard-deepcontext) run on."""


class AwsIngress(_Section):
    subnets: list[str] = []
    """Public subnet ids for the ALB (subnet-...); empty: taken from discovery of the EKS cluster's VPC."""
    security_groups: list[str] = []
    """Security group ids for the ALB (sg-...); empty: from discovery, else the controller's own."""
    load_balancer_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,32}$")
    """Name of the shared ALB; default: <cluster>-alb-ingress."""
    scheme: str = Field(default="internet-facing", pattern=r"^(internet-facing|internal)$")


class AzureIngress(_Section):
    private_ip: bool = False
    """Serve on the application gateway's private address only."""
    ssl_certificate: str | None = None
    """Name of a certificate already uploaded to the application gateway (instead of a TLS Secret)."""


class GcpIngress(_Section):
    static_ip_name: str | None = Field(default=None, pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
    """Reserved global static IP (kubernetes.io/ingress.global-static-ip-name)."""
    ssl_policy: str | None = None
    """Compute SSL policy the FrontendConfig applies (e.g. a TLS 1.2+ policy)."""
    security_policy: str | None = None
    """Cloud Armor policy the backends use."""


class ServiceOverride(_Section):
    values: dict[str, Any] = {}
    """Helm values laid over what hfwizard computes for this service (a documented escape hatch).
    Never put a secret here: values land in Helm's release records."""


class WorkloadIdentity(_Section):
    aws_role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")
    """IAM role (IRSA) for the services that call the cloud (admin, shield)."""
    gcp_service_account: str | None = Field(default=None, pattern=r"^[^@\s]+@[a-z0-9.-]+\.iam\.gserviceaccount\.com$")
    """Google service account (GKE workload identity) for those services."""
    azure_client_id: str | None = Field(default=None, pattern=r"^[0-9a-fA-F-]{36}$")
    """Managed identity client id (Azure workload identity) for those services."""
    services: dict[ServiceName, str] = {}
    """Per service: a role ARN, service account email or client id instead of the one above."""


describe_fields(__name__)
