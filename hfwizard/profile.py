"""The install profile: every answer an install needs, as a pydantic model (`hfwizard/v1`).

Secret fields hold references (see secrets.py), never values. Sizing presets live in
`profiles/presets/` and fill whatever a profile leaves unsaid.
"""

import base64
import copy
import re
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from hfwizard import requirements as req
from hfwizard.model_support import describe_fields, late_pattern
from hfwizard.platform.settings import (
    HIGHFLAME_CHARTS,
    AwsIngress,
    AzureIngress,
    GcpIngress,
    License,
    ModelProvider,
    NodeGroups,
    ServiceName,
    ServiceOverride,
    WorkloadIdentity,
    default_of,
)
from hfwizard.secrets import Ref

API_VERSION: Final = "hfwizard/v1"
KIND: Final = "InstallProfile"

# Rules an install needs that the schema cannot demand of every file (a draft half answered, a profile
# that fills a field later): they apply when validation runs with `complete_context(cloud)`, as the
# wizard, plain mode and preflight do. A rule's message may start with the field it is about
# ("domain: ..."): hfwizard.draft places it on that field.
COMPLETE: Final = "complete"


def complete_context(cloud: str | None) -> dict[str, object]:
    """The validation context that turns on the rules an install needs (see COMPLETE)."""
    return {COMPLETE: True, "cloud": cloud}


def _complete(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(COMPLETE))


def _needs_data_services(info: ValidationInfo) -> bool:
    # The sandbox brings its own data services; every other target names the operator's.
    return _complete(info) and (info.context or {}).get("cloud") != "sandbox"

DnsLabel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
ReleaseName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=53)]
Hostname = Annotated[str, StringConstraints(
    max_length=253,
    pattern=r"^([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$")]
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")]
Version = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+){0,2}$")]

_TAG: Final = r"^[\w][\w.-]{0,127}$"  # compiled on first use: at class creation it costs 0.15 s (late_pattern)
ImageTag = Annotated[str, AfterValidator(late_pattern(_TAG)), WithJsonSchema({"pattern": _TAG, "type": "string"})]


class Section(BaseModel):
    """Base of every profile section: camelCase keys in YAML, unknown keys refused; the docstring under
    a field is its description (hfwizard.model_support, at the end of this module)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        defer_build=True,  # built on first use: importing the model costs no validator (see default_of)
    )


class Cloud(StrEnum):
    AWS = "aws"
    GCP = "gcp"
    AZURE = "azure"
    EXISTING = "existing"
    SANDBOX = "sandbox"


class ModuleName(StrEnum):
    GUARDRAILS = "guardrails"
    POLICY = "policy"
    AGENT_IDENTITY = "agentIdentity"
    MCP_GATEWAY = "mcpGateway"
    MODEL_SCANNING = "modelScanning"
    RED_TEAMING = "redTeaming"
    OBSERVABILITY = "observability"


MODULE_TITLES: dict[ModuleName, str] = {
    ModuleName.GUARDRAILS: "Runtime guardrails",
    ModuleName.POLICY: "Cedar policy enforcement",
    ModuleName.AGENT_IDENTITY: "Agent identity",
    ModuleName.MCP_GATEWAY: "MCP gateway security",
    ModuleName.MODEL_SCANNING: "Model supply-chain scanning",
    ModuleName.RED_TEAMING: "Adversarial red teaming",
    ModuleName.OBSERVABILITY: "Detection and observability",
}


class Metadata(Section):
    name: DnsLabel = "highflame"
    """A short name for this install; it names the install's state directory."""
    description: str | None = None
    """Free text for the operator (environment, owner, ticket)."""


class Target(Section):
    cloud: Cloud = Cloud.EXISTING
    """Where the cluster runs: aws, gcp, azure, an existing cluster reached by kubeconfig, or the sandbox."""
    region: str | None = Field(default=None, pattern=r"^[a-z0-9-]+$")
    """Cloud region or location (us-east-1, europe-west4, westeurope)."""
    cluster: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,99}$")
    """The Kubernetes cluster's name at the cloud provider."""
    kubeconfig: str | None = None
    """Path of the kubeconfig to use; default: $KUBECONFIG or ~/.kube/config, or one the wizard writes."""
    context: str | None = None
    """kubeconfig context; default: the file's current context."""
    namespace: DnsLabel = "highflame"
    """Namespace the platform installs into."""
    release: ReleaseName = "highflame"
    """Helm release name of the platform (ClickHouse gets `<release>-clickhouse`)."""
    rehearses: Cloud | None = None
    """Sandbox only: the cloud whose values the rehearsal installs (aws, gcp, azure; default aws)."""

    @model_validator(mode="after")
    def _cloud_needs_cluster(self) -> Self:
        if self.cloud in (Cloud.AWS, Cloud.GCP, Cloud.AZURE):
            missing = [f for f in ("region", "cluster") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"cloud {self.cloud.value} needs {' and '.join(missing)} "
                                 f"(the cluster's location and name at {self.cloud.value})")
        return self


class AwsCredentials(Section):
    profile: str | None = None
    """Named profile from ~/.aws/config (static keys, SSO or role assumption)."""
    role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")
    """Role to assume for the install."""
    sso: bool = False
    """The profile signs in through IAM Identity Center (run `aws sso login` when it expires)."""
    access_key_id: Ref | None = None
    """Static access key id, as a reference (prefer a profile or SSO)."""
    secret_access_key: Ref | None = None
    """Static secret access key, as a reference."""
    endpoint_url: str | None = None
    """Override every AWS endpoint (testing, private endpoints)."""


class GcpCredentials(Section):
    project: str | None = Field(default=None, pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
    """Google Cloud project id."""
    service_account_key: Ref | None = None
    """Service-account key JSON, as a reference (file:PATH usually)."""
    use_application_default: bool = True
    """Use application default credentials when no key is given."""


class AzureCredentials(Section):
    tenant_id: str | None = Field(default=None, pattern=r"^[0-9a-fA-F-]{36}$")
    subscription_id: str | None = Field(default=None, pattern=r"^[0-9a-fA-F-]{36}$")
    resource_group: str | None = None
    """Resource group of the AKS cluster and data services."""
    client_id: str | None = Field(default=None, pattern=r"^[0-9a-fA-F-]{36}$")
    """Service principal's application id (leave empty to use the Azure CLI login or managed identity)."""
    client_secret: Ref | None = None
    """Service principal's secret, as a reference (env:, file: or keyring:)."""
    authority_host: str | None = Field(default=None, pattern=r"^https://[^\s/]+/?$")
    """Entra ID sign-in host for a sovereign or private cloud, e.g. https://login.microsoftonline.us
    (Azure Government) or https://login.chinacloudapi.cn; empty: the public cloud."""
    management_endpoint: str | None = Field(default=None, pattern=r"^https://[^\s/]+/?$")
    """Azure Resource Manager endpoint to match, e.g. https://management.usgovcloudapi.net;
    empty: https://management.azure.com."""


class Credentials(Section):
    aws: AwsCredentials | None = None
    gcp: GcpCredentials | None = None
    azure: AzureCredentials | None = None

    def missing_for(self, cloud: str) -> str | None:
        """"<field>: why" when `cloud` needs a credential field left empty here, else None."""
        if cloud == Cloud.GCP.value and not (self.gcp and self.gcp.project):
            return ("gcp.project: required when Highflame runs on GCP (target.cloud gcp): the project id "
                    "of the GKE cluster, e.g. acme-prod-123456")
        if cloud == Cloud.AZURE.value and not (self.azure and self.azure.subscription_id):
            return ("azure.subscriptionId: required when Highflame runs on Azure (target.cloud azure): the "
                    "subscription id of the AKS cluster (a GUID)")
        return None

    @model_validator(mode="after")
    def _cloud_needs(self, info: ValidationInfo) -> Self:
        # With the install's rules on, this section says it itself, so the Credentials step shows it
        # even while other sections still have problems (the profile-wide check would not run then).
        missing = self.missing_for(str((info.context or {}).get("cloud"))) if _complete(info) else None
        if missing:
            raise ValueError(missing)
        return self


class Nodes(Section):
    count: int = Field(default=req.WORKERS_MIN, ge=req.WORKERS_MIN, le=1000)
    """Worker nodes; the platform needs at least 6."""
    cores: int = Field(default=req.WORKER_CORES[0], ge=req.WORKER_CORES[0], le=req.WORKER_CORES[1])
    """CPU cores per worker node (8–16)."""
    memory_gib: int = Field(default=req.WORKER_MEMORY_GIB[1], ge=req.WORKER_MEMORY_GIB[0], le=req.WORKER_MEMORY_GIB[1],
                            alias="memoryGiB")
    """Memory per worker node in GiB (16–32)."""


class RedisSizing(Section):
    memory_gib_per_node: float = Field(default=req.REDIS_MEMORY_GIB_MIN, ge=req.REDIS_MEMORY_GIB_MIN, le=1024,
                                       alias="memoryGiBPerNode")
    """Memory per Redis node in GiB (at least 4)."""


class PostgresSizing(Section):
    vcpu: int = Field(default=req.POSTGRES_VCPU_MIN, ge=req.POSTGRES_VCPU_MIN, le=128)
    """vCPUs of the PostgreSQL instance (at least 4)."""
    memory_gib: int = Field(default=req.POSTGRES_MEMORY_GIB_MIN, ge=req.POSTGRES_MEMORY_GIB_MIN, le=4096,
                            alias="memoryGiB")
    """Memory of the PostgreSQL instance in GiB (at least 8)."""


class Sizing(Section):
    preset: Literal["small", "medium", "large"] | None = None
    """A sizing preset from profiles/presets; explicit fields win over it."""
    nodes: Nodes = default_of(Nodes)
    redis: RedisSizing = default_of(RedisSizing)
    postgres: PostgresSizing = default_of(PostgresSizing)
    node_groups: NodeGroups = default_of(NodeGroups)
    """Node groups the platform's services select (general, and gpu for the guardrail models)."""


class Hpa(Section):
    enabled: bool = True
    min_replicas: int = Field(default=2, ge=1, le=100)
    max_replicas: int = Field(default=6, ge=1, le=200)
    target_cpu_percent: int = Field(default=70, ge=10, le=100, alias="targetCPUPercent")

    @model_validator(mode="after")
    def _min_le_max(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) must not exceed maxReplicas ({self.max_replicas})")
        return self


class Pdb(Section):
    enabled: bool = True
    min_available: int = Field(default=1, ge=0, le=100)
    """Pods kept running during voluntary disruptions (node drains, upgrades)."""


class Module(Section):
    enabled: bool = True
    replicas: int = Field(default=2, ge=1, le=100)
    """Replicas when the HPA is off, and the starting count when it is on."""
    hpa: Hpa = default_of(Hpa)
    pdb: Pdb = default_of(Pdb)

    @model_validator(mode="after")
    def _pdb_below_replicas(self) -> Self:
        floor = self.hpa.min_replicas if self.hpa.enabled else self.replicas
        if self.pdb.enabled and self.pdb.min_available >= floor:
            raise ValueError(f"pdb.minAvailable ({self.pdb.min_available}) must be below the lowest replica "
                             f"count ({floor}), or node drains can never evict a pod")
        return self


class Modules(Section):
    guardrails: Module = default_of(Module)
    policy: Module = default_of(Module)
    agent_identity: Module = default_of(Module)
    mcp_gateway: Module = default_of(Module)
    model_scanning: Module = default_of(Module)
    red_teaming: Module = default_of(Module)
    observability: Module = default_of(Module)

    def items(self) -> list[tuple[ModuleName, Module]]:
        return [(name, getattr(self, _snake(name.value))) for name in ModuleName]


class SslMode(StrEnum):
    DISABLE = "disable"
    ALLOW = "allow"
    PREFER = "prefer"
    REQUIRE = "require"
    VERIFY_CA = "verify-ca"
    VERIFY_FULL = "verify-full"


class Postgres(Section):
    host: Hostname | None = Field(default=None, validate_default=True)
    """Endpoint of the managed PostgreSQL (RDS, Cloud SQL, Azure Database for PostgreSQL)."""
    port: int = Field(default=5432, ge=1, le=65535)
    database: str = Field(default="highflame", pattern=r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")
    user: str = Field(default="highflame", pattern=r"^[A-Za-z_][A-Za-z0-9_$.@-]{0,62}$")
    password: Ref | None = None
    """The user's password, as a reference."""
    sslmode: SslMode = SslMode.VERIFY_FULL
    ca_cert: str | None = None
    """Path of the CA bundle that signs the server's certificate (for verify-ca / verify-full)."""
    min_version: Version = req.POSTGRES.text
    """Lowest PostgreSQL server version accepted; Highflame needs 17.2."""

    @field_validator("host")
    @classmethod
    def _host_given(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None and _needs_data_services(info):
            raise ValueError("required: the PostgreSQL server's host name or IP (the RDS, Cloud SQL or "
                             "Azure endpoint)")
        return v

    @field_validator("min_version")
    @classmethod
    def _at_least_17_2(cls, v: str) -> str:
        if _vtuple(v) < req.POSTGRES.tuple:
            raise ValueError(f"Highflame needs PostgreSQL {req.POSTGRES.text} or newer; minVersion cannot be lower")
        return v


Endpoint = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")]


class Redis(Section):
    endpoints: list[Endpoint] = Field(default=[], validate_default=True)
    """Cluster seed endpoints as host:port (the configuration endpoint, or one or more nodes)."""
    tls: bool = True
    ca_cert: str | None = None
    """Path of the CA bundle for the nodes' certificates."""
    username: str | None = None
    """ACL user (Redis 6+); empty for the default user."""
    password: Ref | None = None
    """AUTH token / ACL password, as a reference."""
    min_version: Version = req.REDIS.text
    """Lowest Redis version accepted; Highflame needs 7.1."""

    @field_validator("min_version")
    @classmethod
    def _at_least_7_1(cls, v: str) -> str:
        if _vtuple(v) < req.REDIS.tuple:
            raise ValueError(f"Highflame needs Redis {req.REDIS.text} or newer; minVersion cannot be lower")
        return v

    @field_validator("endpoints")
    @classmethod
    def _ports_in_range(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if not v and _needs_data_services(info):
            raise ValueError("required: at least one node as host:port (the cluster's configuration "
                             "endpoint, e.g. redis.example.com:6379)")
        for ep in v:
            port = int(ep.rsplit(":", 1)[1])
            if not 1 <= port <= 65535:
                raise ValueError(f"endpoint {ep!r} has port {port}; ports are 1–65535")
        return v


class BackupProvider(StrEnum):
    S3 = "s3"
    GCS = "gcs"
    AZURE = "azure"


class Backup(Section):
    provider: BackupProvider = BackupProvider.S3
    bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$",
                               validate_default=True)
    """Bucket (S3, GCS) or container (Azure Blob) for ClickHouse backups."""
    prefix: str = "clickhouse/"
    region: str | None = None
    account: str | None = None
    """Azure storage account name (Azure Blob only)."""
    schedule: str = Field(default="0 3 * * *", pattern=r"^(\S+\s+){4}\S+$")
    """Cron schedule of the backup job."""
    retention_days: int = Field(default=14, ge=1, le=3650)
    credentials: Ref | None = None
    """Access key / service-account key for the bucket, when workload identity is not used."""
    keep: int | None = Field(default=None, ge=1, le=10000)
    """Remote backups kept (clickhouse-backup's BACKUP_KEEP); default: as many as the schedule
    makes in retentionDays."""
    role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")
    """S3: IAM role the ClickHouse pods assume through IRSA (preferred over static keys)."""
    access_key_id: Ref | None = None
    """S3: static access key id, as a reference (only when no roleArn is given)."""
    secret_access_key: Ref | None = None
    """S3: static secret access key, as a reference."""
    gcp_service_account: str | None = Field(
        default=None, pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com$")
    """GCS: Google service account the pods act as through GKE workload identity (preferred over a key)."""
    azure_client_id: str | None = Field(default=None, pattern=r"^[0-9a-fA-F-]{36}$")
    """Azure Blob: client id of the managed identity federated with the pods' service account
    (preferred over an account key in `credentials`)."""

    @field_validator("bucket")
    @classmethod
    def _bucket_given(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None and _needs_data_services(info):
            raise ValueError("required: the bucket (or Azure container) ClickHouse backups go to")
        return v

    @model_validator(mode="after")
    def _one_way_in(self) -> Self:
        # `credentials` predates the key pair: with accessKeyId it stands for the secret access key.
        if self.access_key_id is not None and self.secret_access_key is None and self.credentials is None:
            raise ValueError("accessKeyId needs secretAccessKey (the pair signs S3 requests)")
        if self.secret_access_key is not None and self.access_key_id is None:
            raise ValueError("secretAccessKey needs accessKeyId (the pair signs S3 requests)")
        own = {"roleArn": (self.role_arn, BackupProvider.S3), "accessKeyId": (self.access_key_id, BackupProvider.S3),
               "gcpServiceAccount": (self.gcp_service_account, BackupProvider.GCS),
               "azureClientId": (self.azure_client_id, BackupProvider.AZURE)}
        for field, (value, provider) in own.items():
            if value is not None and self.provider is not provider:
                raise ValueError(f"{field} is for provider {provider.value}, but provider is {self.provider.value}")
        identity = self.role_arn or self.gcp_service_account or self.azure_client_id
        if identity and (self.access_key_id or self.credentials):
            raise ValueError("choose one way into the bucket: a workload identity (roleArn, gcpServiceAccount, "
                             "azureClientId) or static keys, not both")
        return self


class ClickHouse(Section):
    storage_size: Quantity = "200Gi"
    storage_class: DnsLabel | None = None
    """StorageClass for ClickHouse volumes; default: the cluster's default class."""
    replicas: int = Field(default=2, ge=1, le=9)
    backup: Backup = default_of(Backup)
    shards: int = Field(default=1, ge=1, le=64)
    """Shards of the ClickHouse cluster (each with `replicas` replicas)."""
    cpu: Quantity | None = None
    """CPU of each ClickHouse server; default from sizing (4, the reference server; 8 on large)."""
    memory: Quantity | None = None
    """Memory of each ClickHouse server; default from sizing (12Gi, the reference server; 24Gi on large)."""
    keeper_replicas: Literal[1, 3, 5] = 1
    """ClickHouse Keeper nodes (1, or 3 / 5 for a quorum that survives node loss)."""
    keeper_storage_size: Quantity = "20Gi"
    """Volume of each Keeper node."""
    image_registry: Hostname | None = None
    """Registry mirror for the ClickHouse, Keeper, backup and operator images (default: Docker Hub)."""
    namespace: DnsLabel | None = None
    """Namespace of the ClickHouse installations; default: the platform's namespace."""
    installation: DnsLabel = "ch"
    """Name of the ClickHouseInstallation and ClickHouseKeeperInstallation (the server Service is
    clickhouse-<name>)."""


_PK = re.compile(r"^pk_(test|live)_([A-Za-z0-9+/=_-]+)$")


def clerk_frontend_host(publishable_key: str) -> str:
    """The Clerk frontend API host a publishable key encodes (`pk_live_<base64("host$")>`)."""
    m = _PK.match(publishable_key)
    if not m:
        raise ValueError("must look like pk_test_... or pk_live_...")
    raw = m.group(2)
    try:
        decoded = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=False).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise ValueError("does not decode to a Clerk frontend host") from None
    host = decoded.removesuffix("$")
    if not decoded.endswith("$") or not re.match(r"^[A-Za-z0-9.-]+(:[0-9]+)?$", host):
        raise ValueError("does not decode to a Clerk frontend host") from None
    return host


class Clerk(Section):
    publishable_key: str | None = Field(default=None, validate_default=True)
    """Clerk publishable key (pk_live_... / pk_test_...); it is public and names the frontend API host."""
    secret_key: Ref | None = None
    """Clerk secret key (sk_live_... / sk_test_...), as a reference."""
    api_url: str = Field(default="https://api.clerk.com", pattern=r"^https?://\S+$")
    """Clerk backend API base URL."""

    @field_validator("publishable_key")
    @classmethod
    def _decodes(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            clerk_frontend_host(v)
        elif _complete(info):
            raise ValueError("required: the publishable key from the Clerk dashboard (API keys), "
                             "pk_live_… or pk_test_…")
        return v

    @property
    def environment(self) -> str | None:
        m = _PK.match(self.publishable_key or "")
        return m.group(1) if m else None


class Tls(Section):
    enabled: bool = True
    existing_secret: DnsLabel | None = None
    """A kubernetes.io/tls Secret already in the namespace."""
    certificate: Ref | None = None
    """PEM certificate chain, as a reference (file:PATH usually)."""
    private_key: Ref | None = None
    """PEM private key, as a reference."""
    acm_certificate_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]+$")
    """AWS ACM certificate for an ALB (instead of a Secret)."""
    issuer: str | None = None
    """cert-manager ClusterIssuer that issues the certificate."""

    @model_validator(mode="after")
    def _has_a_source(self) -> Self:
        if not self.enabled:
            return self
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("certificate and privateKey go together: give both or neither")
        if self.source_count() > 1:
            raise ValueError("choose one TLS source: existingSecret, certificate+privateKey, "
                             "acmCertificateArn or issuer")
        return self

    def source_count(self) -> int:
        return sum(s is not None for s in (self.existing_secret, self.certificate, self.acm_certificate_arn,
                                            self.issuer))


class Ingress(Section):
    enabled: bool = True
    domain: Hostname | None = None
    """Public host name of the platform (app.highflame.example.com)."""
    class_name: str | None = "nginx"
    """IngressClass (nginx, alb, gce, azure-application-gateway ...)."""
    tls: Tls = default_of(Tls)
    annotations: dict[str, str] = {}
    """Extra annotations, e.g. for the cloud's load balancer."""
    aws: AwsIngress = default_of(AwsIngress)
    """EKS: the ALB's subnets and security groups (the certificate is tls.acmCertificateArn)."""
    azure: AzureIngress = default_of(AzureIngress)
    """AKS: the application gateway's settings."""
    gcp: GcpIngress = default_of(GcpIngress)
    """GKE: static IP, SSL policy and Cloud Armor policy of the shared ingress."""

    @field_validator("domain")
    @classmethod
    def _public(cls, v: str | None) -> str | None:
        if v is not None and (v.lower() in ("localhost", "localhost.localdomain") or v.lower().endswith(".localhost")
                              or "." not in v):
            raise ValueError("must be a public host name with a dot, such as highflame.example.com "
                             "(localhost and single names cannot be reached from outside)")
        return v

    @model_validator(mode="after")
    def _complete_ingress(self, info: ValidationInfo) -> Self:
        if not self.enabled:
            return self
        tls = self.tls
        cloud = (info.context or {}).get("cloud") if _complete(info) else None
        unusable = self.unusable_tls_source(cloud) if tls.enabled else None
        if unusable:
            raise ValueError(unusable)
        if not _complete(info):
            return self
        if self.domain is None:
            raise ValueError("domain: required while \"Create an Ingress\" is on: the platform's public "
                             "host name, such as highflame.example.com")
        if tls.enabled and tls.source_count() == 0:
            raise ValueError("tls: \"Serve TLS\" is on: choose exactly one certificate source (an existing "
                             "TLS Secret, a certificate and key, an ACM certificate or a cert-manager issuer)")
        return self

    def unusable_tls_source(self, cloud: str | None = None) -> str | None:
        """"tls.<field>: why" when the TLS source given is one the ingress class (on `cloud`) cannot serve."""
        from hfwizard.profile_rules import unusable_tls_source

        return unusable_tls_source(self.class_name, self.tls, cloud)


class Images(Section):
    registry: Hostname = "ghcr.io"
    repository: str = Field(default="highflame", pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")
    tag: ImageTag | None = None
    """Image tag; default: the chart's appVersion."""
    pull_username: str | None = None
    pull_secret: Ref | None = None
    """Registry token for pulling images, as a reference."""
    mirror: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$")
    """Registry mirror (host[:port][/path]) that replaces the platform's registry (ghcr.io) in every image."""


class Charts(Section):
    repository: str = Field(default=HIGHFLAME_CHARTS, pattern=r"^(https?|oci)://\S+$")
    """Helm repository of the platform's charts (https:// with an index.yaml, or oci://registry/path)."""
    mirror: str | None = None
    """A local folder of chart tarballs and index.yaml (`hfwizard charts pull --to DIR`) for air-gapped
    sites; when set, charts come from it and nothing is fetched."""
    operator_repository: str | None = Field(default=None, pattern=r"^(https?|oci)://\S+$")
    """Helm repository of the ClickHouse operator's chart when not the catalog's (https://helm.altinity.com):
    a site's internal copy. charts.mirror, when set, serves it too."""


class Platform(Section):
    model_api_keys: dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][-a-z0-9]{0,40}$")], Ref] = {}
    """AI model API keys (openai, anthropic ...) as references; stored in a Kubernetes Secret."""
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    version: str | None = Field(default=None, pattern=r"^[0-9]{4}\.[0-9]{2}(\.[0-9]+)?$")
    """Highflame platform release to install (a catalog shipped with hfwizard); default: the newest."""
    license: License = default_of(License)
    """The license Highflame issues (two files), as references."""
    model: ModelProvider = default_of(ModelProvider)
    """The LLM provider red teaming and Ramparts call."""
    models_secret: Ref | None = None
    """Highflame's model-download secret (HIGHFLAME_MODELS_SECRET) for the guardrail models."""
    feature_flags: Ref | None = None
    """GO Feature Flag relay configuration (goff.yaml); default: a built-in one with every flag off."""
    gcp_credential: Ref | None = None
    """Google credential JSON shield uses for Model Armor (optional outside GCP)."""
    account_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Highflame account id (ACCOUNT_ID), when Highflame gave one."""

    @field_validator("version")
    @classmethod
    def _shipped(cls, v: str | None) -> str | None:
        from hfwizard.platform.catalog import available_versions

        if v is not None and v not in available_versions():
            raise ValueError(f"platform release {v} is not shipped with this hfwizard "
                             f"(shipped: {', '.join(available_versions())})")
        return v


class HelmBackend(StrEnum):
    EMBEDDED = "embedded"
    CLI = "cli"


class InstallOptions(Section):
    helm: HelmBackend = HelmBackend.EMBEDDED
    """embedded: Helm's Go SDK built in; cli: the operator's own `helm` (3.8 or newer)."""
    helm_binary: str = "helm"
    timeout_seconds: int = Field(default=1800, ge=10, le=86400)
    """Longest the whole install may take."""
    stall_seconds: int = Field(default=300, ge=5, le=7200)
    """A step fails as stalled when nothing advances for this long."""
    rollback_on_failure: bool = False
    max_parallel: int = Field(default=12, ge=1, le=32)
    """At most this many independent steps (releases) run at the same time."""
    # 12: fifteen releases wait only for flag and authn; why and what it costs: benchmarks/README.md (platform).


class PreflightOptions(Section):
    timeout_seconds: float = Field(default=10, gt=0, le=600)
    """Default timeout of each check."""
    skip: list[str] = []
    """Check ids the operator chose to skip."""
    registry_url: str = Field(default="https://ghcr.io", pattern=r"^https?://\S+$")
    """Image registry to test reachability against."""
    cluster_outbound: bool = False
    """Also check outbound from inside the cluster: a short-lived pod in the install's namespace curls the
    image registry (images.mirror when set) and Clerk, then is deleted. Off by default: it changes the
    cluster (a pod for a few seconds). --cluster-outbound turns it on for one run."""
    probe_image: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$", max_length=255)
    """Image of that pod (curl 8.3 or newer); default: curlimages/curl, through images.mirror when set."""


class InstallProfile(Section):
    api_version: Literal["hfwizard/v1"] = Field(default="hfwizard/v1", alias="apiVersion")
    kind: Literal["InstallProfile"] = "InstallProfile"
    metadata: Metadata = default_of(Metadata)
    target: Target = default_of(Target)
    credentials: Credentials = default_of(Credentials)
    sizing: Sizing = default_of(Sizing)
    modules: Modules = default_of(Modules)
    postgres: Postgres = default_of(Postgres)
    redis: Redis = default_of(Redis)
    clickhouse: ClickHouse = default_of(ClickHouse)
    clerk: Clerk = default_of(Clerk)
    ingress: Ingress = default_of(Ingress)
    images: Images = default_of(Images)
    charts: Charts = default_of(Charts)
    platform: Platform = default_of(Platform)
    install: InstallOptions = default_of(InstallOptions)
    preflight: PreflightOptions = default_of(PreflightOptions)
    services: dict[ServiceName, ServiceOverride] = {}
    """Per platform service (admin, shield, ...): Helm values laid over hfwizard's, the escape hatch."""
    identity: WorkloadIdentity = default_of(WorkloadIdentity)
    """Workload identity for the services that call the cloud (IRSA role, GCP service account, Azure id)."""

    @model_validator(mode="after")
    def _cross_section(self) -> Self:
        cloud = self.target.cloud
        missing = self.credentials.missing_for(cloud.value)
        if missing:
            raise ValueError(f"credentials.{missing}")
        if self.ingress.enabled and self.ingress.tls.enabled and self.ingress.tls.acm_certificate_arn \
                and cloud not in (Cloud.AWS, Cloud.EXISTING):
            raise ValueError("ingress.tls.acmCertificateArn: an ACM certificate works only with an AWS "
                             "load balancer (target.cloud aws or existing)")
        unusable = self.ingress.unusable_tls_source(cloud.value) if self.ingress.enabled and \
            self.ingress.tls.enabled else None
        if unusable:
            raise ValueError(f"ingress.{unusable}")
        return self

    @property
    def is_sandbox(self) -> bool:
        return self.target.cloud is Cloud.SANDBOX

    @classmethod
    def validate_complete(cls, data: dict[str, Any]) -> Self:
        """Validate `data` with the rules an install needs on (see COMPLETE): what the wizard, plain mode
        and preflight hold a profile to. Raises pydantic's ValidationError."""
        filled = copy.deepcopy(data)
        # A section left out takes its default instance, which pydantic does not validate: give the
        # sections with install rules an empty mapping so their rules run.
        for path in _RULED_SECTIONS:
            node = filled
            for key in path.split("."):
                node = node.setdefault(key, {}) if isinstance(node, dict) else {}
        cloud = (filled.get("target") or {}).get("cloud") or Cloud.EXISTING.value
        return cls.model_validate(filled, context=complete_context(str(cloud)))


_RULED_SECTIONS = ("credentials", "clerk", "ingress.tls", "postgres", "redis", "clickhouse.backup")


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def secret_paths(model: type[BaseModel] = InstallProfile, prefix: str = "") -> set[str]:
    """Dotted YAML paths of every field that holds secret references; their input is never echoed."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        if "_check_ref" in repr(info.annotation):
            out.add(key)
        for sub in getattr(info.annotation, "__args__", ()) or (info.annotation,):
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                out |= secret_paths(sub, key + ".")
    return out


describe_fields(__name__)
