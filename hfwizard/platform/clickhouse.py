"""ClickHouse as Highflame runs it: profile -> the Altinity operator's objects, backups, endpoints, readiness.

Pure functions, no I/O. The operator itself is a Helm release (`OPERATOR_CHART`, its CRDs come
through the chart's own pre-install hook); everything else here is applied by hfwizard under its
field manager: the Keeper and server installations, the `clickhouse` ServiceAccount (cloud workload
identity), the backup config Secret, the setup Job and the backup CronJob. No object holds a secret
value: passwords live in `clickhouse-secrets` (generated once), static bucket keys in
`clickhouse-backup-credentials` (from the profile's references), and pods read both through env.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import yaml

from hfwizard.errors import ProfileError
from hfwizard.platform.clickhouse_scripts import BACKUP_SCRIPT, SETUP_SCRIPT
from hfwizard.platform.clickhouse_status import InstallationWatch, aborted, changes, expected_hosts, readiness
from hfwizard.platform.secretsets import REGISTRY_SECRET, generated_ref
from hfwizard.platform.secretspec import MANAGED_BY, MANAGED_BY_LABEL, Generate, SecretEntry, SecretSpec
from hfwizard.profile import BackupProvider, InstallProfile
from hfwizard.secrets import RefKind, parse_ref

JSON = dict[str, Any]

__all__ = [
    "BACKUP_CONFIG_SECRET", "BACKUP_CREDENTIALS_SECRET", "CHI_API_VERSION", "CHK_API_VERSION", "CLUSTER",
    "OPERATOR_CHART", "SECRET_NAME", "SERVICE_ACCOUNT", "USERS", "AppliedObject", "BackupConfig", "Endpoints",
    "InstallationWatch", "OperatorChart", "aborted", "applied_objects", "backup_config", "backup_cronjob", "changes",
    "clickhouse_installation", "clickhouse_secret_spec", "expected_hosts", "keeper_installation", "namespace",
    "operator_values", "readiness", "secret_specs", "server_resources", "service_account", "service_endpoints",
    "setup_job",
]


@dataclass(frozen=True)
class OperatorChart:
    repo: str
    name: str
    version: str


# Pinned here until the platform catalog carries it; the chart's pre-install hook applies the CRDs.
OPERATOR_CHART: Final = OperatorChart("https://helm.altinity.com", "altinity-clickhouse-operator", "0.25.6")
CHI_API_VERSION: Final = "clickhouse.altinity.com/v1"
CHK_API_VERSION: Final = "clickhouse-keeper.altinity.com/v1"
SERVER_IMAGE: Final = "clickhouse/clickhouse-server:25.10.2"
KEEPER_IMAGE: Final = "clickhouse/clickhouse-keeper:25.10.2"
BACKUP_IMAGE: Final = "altinity/clickhouse-backup:2.6.39"
DEFAULT_REGISTRY: Final = "docker.io"

CLUSTER: Final = "highflame"  # the cluster name inside the installation: chi-<chi>-highflame-<shard>-<replica>
KEEPER_CLUSTER: Final = "keeper"
DATABASE: Final = "highflame"
SECRET_NAME: Final = "clickhouse-secrets"
BACKUP_CONFIG_SECRET: Final = "clickhouse-backup-config"
BACKUP_CREDENTIALS_SECRET: Final = "clickhouse-backup-credentials"
SERVICE_ACCOUNT: Final = "clickhouse"
SETUP_JOB: Final = "clickhouse-setup"
BACKUP_CRONJOB: Final = "clickhouse-backup"
KEEPER_PORT: Final = 2181
BACKUP_API_PORT: Final = 7171
# user -> key of its password in `clickhouse-secrets`
USERS: Final = {
    "highflame_admin": "CH_ADMIN_PASSWORD",
    "highflame_readonly": "CH_READONLY_PASSWORD",
    "highflame_backup": "CH_BACKUP_PASSWORD",
}
ADMIN_PASSWORD_KEY: Final = USERS["highflame_admin"]
SYSTEM_LOG_TABLES: Final = (
    "query_log", "query_thread_log", "query_views_log", "part_log", "trace_log", "metric_log",
    "asynchronous_metric_log", "text_log", "processors_profile_log", "session_log", "error_log",
    "latency_log", "blob_storage_log",
)  # every one has an event_date column
SYSTEM_LOG_TTL_DAYS: Final = 3


def _labels(component: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, "app.kubernetes.io/part-of": "highflame",
            "app.kubernetes.io/component": component}


def namespace(profile: InstallProfile) -> str:
    return profile.clickhouse.namespace or profile.target.namespace


def _image(profile: InstallProfile, image: str) -> str:
    """An image through the profile's registry mirror (Docker Hub when none is set)."""
    mirror = profile.clickhouse.image_registry
    return f"{mirror}/{image}" if mirror else f"{DEFAULT_REGISTRY}/{image}"


def _pull_secrets(profile: InstallProfile) -> list[JSON]:
    # The platform's pull secret (prerequisite Secret highflame-registry-secret) opens the mirror only
    # when the mirror is the registry host it is made for.
    images, mirror = profile.images, profile.clickhouse.image_registry
    if images.pull_secret is None or mirror is None:
        return []
    if mirror.split("/", 1)[0] != (images.mirror or images.registry).split("/", 1)[0]:
        return []
    return [{"name": REGISTRY_SECRET}]


def _secret_env(name: str, secret: str, key: str) -> JSON:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


# ---- sizing ------------------------------------------------------------------------------------

_SERVER_BY_PRESET: Final = {"large": ("8", "24Gi")}
_REFERENCE_SERVER: Final = ("4", "12Gi")  # what Highflame runs: 4 CPU / 12 Gi per server


def server_resources(profile: InstallProfile) -> JSON:
    """Requests and limits of each ClickHouse server: the profile's own, else by sizing preset."""
    ch = profile.clickhouse
    cpu, memory = _SERVER_BY_PRESET.get(profile.sizing.preset or "", _REFERENCE_SERVER)
    cpu, memory = ch.cpu or cpu, ch.memory or memory
    # Memory limit equals the request: ClickHouse sizes its caches from the cgroup limit.
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}


def _volume_claim(name: str, size: str, storage_class: str | None) -> JSON:
    spec: JSON = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    # Retain: deleting the installation (or an uninstall) never takes the data volumes with it.
    return {"name": name, "reclaimPolicy": "Retain", "spec": spec}


# ---- the installations -------------------------------------------------------------------------

def keeper_installation(profile: InstallProfile) -> JSON:
    """The ClickHouseKeeperInstallation: Keeper nodes on tcp 2181, each with its own volume."""
    ch = profile.clickhouse
    return {
        "apiVersion": CHK_API_VERSION,
        "kind": "ClickHouseKeeperInstallation",
        "metadata": {"name": ch.installation, "namespace": namespace(profile), "labels": _labels("keeper")},
        "spec": {
            "defaults": {"templates": {"podTemplate": "keeper", "dataVolumeClaimTemplate": "keeper-data"}},
            "configuration": {
                "clusters": [{"name": KEEPER_CLUSTER, "layout": {"replicasCount": ch.keeper_replicas}}],
                "settings": {"keeper_server/tcp_port": str(KEEPER_PORT), "logger/level": "information",
                             "logger/console": "true"},
            },
            "templates": {
                "podTemplates": [{
                    "name": "keeper",
                    "spec": {
                        "imagePullSecrets": _pull_secrets(profile),
                        "containers": [{
                            "name": "clickhouse-keeper",
                            "image": _image(profile, KEEPER_IMAGE),
                            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                          "limits": {"memory": "2Gi"}},
                        }],
                    },
                }],
                "volumeClaimTemplates": [_volume_claim("keeper-data", ch.keeper_storage_size, ch.storage_class)],
            },
        },
    }


def _users() -> JSON:
    """The three users, their passwords read by the operator from `clickhouse-secrets`."""
    users: JSON = {}
    for user, key in USERS.items():
        users[f"{user}/k8s_secret_password"] = f"{SECRET_NAME}/{key}"
        users[f"{user}/networks/ip"] = ["::/0"]
    users["highflame_admin/profile"] = "default"
    users["highflame_admin/access_management"] = 1
    users["highflame_readonly/profile"] = "readonly"
    # The backup user freezes parts and reads system tables through the sidecar on the same pod.
    users["highflame_backup/profile"] = "default"
    return users


def _backup_sidecar(profile: InstallProfile, config: BackupConfig) -> JSON:
    return {
        "name": "clickhouse-backup",
        "image": _image(profile, BACKUP_IMAGE),
        "command": ["clickhouse-backup", "server"],
        "env": [
            {"name": "CLICKHOUSE_USERNAME", "value": "highflame_backup"},
            _secret_env("CLICKHOUSE_PASSWORD", SECRET_NAME, USERS["highflame_backup"]),
            {"name": "CLICKHOUSE_BACKUP_CONFIG", "value": "/etc/clickhouse-backup/backup-config.yml"},
            *config.env,
        ],
        # The data volume is not listed: the operator mounts the dataVolumeClaimTemplate at
        # /var/lib/clickhouse in every container of the pod, this one included.
        "volumeMounts": [{"name": "backup-config", "mountPath": "/etc/clickhouse-backup", "readOnly": True}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    }


def clickhouse_installation(profile: InstallProfile) -> JSON:
    """The ClickHouseInstallation: shards x replicas, Keeper for coordination, the backup sidecar."""
    ch = profile.clickhouse
    ns = namespace(profile)
    config = backup_config(profile)
    keeper_host = f"keeper-{ch.installation}.{ns}.svc"
    pod_metadata: JSON = {"labels": dict(config.pod_labels)} if config.pod_labels else {}
    return {
        "apiVersion": CHI_API_VERSION,
        "kind": "ClickHouseInstallation",
        "metadata": {"name": ch.installation, "namespace": ns, "labels": _labels("clickhouse")},
        "spec": {
            "defaults": {"templates": {"podTemplate": "clickhouse", "dataVolumeClaimTemplate": "data"}},
            "configuration": {
                "zookeeper": {"nodes": [{"host": keeper_host, "port": KEEPER_PORT}]},
                "users": _users(),
                "profiles": {"readonly/readonly": 1},
                "clusters": [{"name": CLUSTER, "layout": {"shardsCount": ch.shards, "replicasCount": ch.replicas}}],
            },
            "templates": {
                "podTemplates": [{
                    "name": "clickhouse",
                    "metadata": pod_metadata,
                    "spec": {
                        "serviceAccountName": SERVICE_ACCOUNT,
                        "imagePullSecrets": _pull_secrets(profile),
                        "containers": [
                            {"name": "clickhouse", "image": _image(profile, SERVER_IMAGE),
                             "resources": server_resources(profile)},
                            _backup_sidecar(profile, config),
                        ],
                        "volumes": [{"name": "backup-config", "secret": {"secretName": BACKUP_CONFIG_SECRET}}],
                    },
                }],
                "volumeClaimTemplates": [_volume_claim("data", ch.storage_size, ch.storage_class)],
            },
        },
    }


def clickhouse_secret_spec() -> SecretSpec:
    """`clickhouse-secrets`: the users' passwords. The admin's is the platform's generated
    `clickhouse-admin-password` (the one collector and observatory read: one source of truth), copied
    through its `k8s:` reference; the others are generated once and kept on every re-run and resume."""
    entries = {key: SecretEntry(generate=Generate("urlsafe", 24)) for key in USERS.values()}
    entries[ADMIN_PASSWORD_KEY] = SecretEntry(ref=generated_ref("clickhouse-admin-password"))
    return SecretSpec(SECRET_NAME, "ClickHouse users' passwords (the admin's from the platform secrets)", entries)


def service_account(profile: InstallProfile) -> JSON:
    """The ServiceAccount ClickHouse pods run as, annotated for the cloud's workload identity."""
    config = backup_config(profile)
    meta: JSON = {"name": SERVICE_ACCOUNT, "namespace": namespace(profile), "labels": _labels("clickhouse")}
    if config.service_account_annotations:
        meta["annotations"] = dict(config.service_account_annotations)
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def operator_values(profile: InstallProfile) -> JSON:
    """Helm values of the operator release: its CRD hook off (the plan's `clickhouse/crds` step applies the
    chart's own CRDs, on upgrades too, with no `bitnami/kubectl:latest` Job to pull and wait for), and the
    images through the registry mirror when there is one."""
    values: JSON = {"crdHook": {"enabled": False}}
    mirror = profile.clickhouse.image_registry
    if not mirror:
        return values
    return values | {
        "operator": {"image": {"repository": f"{mirror}/altinity/clickhouse-operator"}},
        "metrics": {"image": {"repository": f"{mirror}/altinity/metrics-exporter"}},
        "imagePullSecrets": _pull_secrets(profile),
    }


# ---- what the platform's services point at -----------------------------------------------------

@dataclass(frozen=True)
class Endpoints:
    """Where the platform's CLICKHOUSE_* variables point: the operator's Service clickhouse-<chi>."""

    service: str
    host: str
    native_port: int = 9000
    http_port: int = 8123
    database: str = DATABASE
    username: str = "highflame_admin"
    password_secret: tuple[str, str] = (SECRET_NAME, USERS["highflame_admin"])

    @property
    def endpoint(self) -> str:
        return f"tcp://{self.host}:{self.native_port}"

    def env(self) -> list[JSON]:
        """Env entries for a service container: names as Highflame's services read them."""
        return [
            {"name": "CLICKHOUSE_ENDPOINT", "value": self.endpoint},
            {"name": "CLICKHOUSE_HOST", "value": self.host},
            {"name": "CLICKHOUSE_DATABASE", "value": self.database},
            {"name": "CLICKHOUSE_USERNAME", "value": self.username},
            _secret_env("CLICKHOUSE_PASSWORD", *self.password_secret),
        ]


def service_endpoints(profile: InstallProfile) -> Endpoints:
    service = f"clickhouse-{profile.clickhouse.installation}"
    return Endpoints(service=service, host=f"{service}.{namespace(profile)}.svc")


# ---- backups -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackupConfig:
    """clickhouse-backup's configuration for the profile's bucket, and the way into it.

    `text` (backup-config.yml) and `secret` (the `clickhouse-backup-config` Secret carrying it)
    hold no secret value: static keys reach the sidecar as env from `credentials` (a SecretSpec of
    references the engine resolves) or straight from a `k8s:` Secret that already exists.
    """

    provider: str  # s3 | gcs | azblob
    text: str
    secret: JSON
    identity: str  # how the pods get into the bucket, for logs and the report
    credentials: SecretSpec | None = None
    env: list[JSON] = field(default_factory=list)
    service_account_annotations: dict[str, str] = field(default_factory=dict)
    pod_labels: dict[str, str] = field(default_factory=dict)


_STORAGE: Final = {BackupProvider.S3: "s3", BackupProvider.GCS: "gcs", BackupProvider.AZURE: "azblob"}


def _static_keys(profile: InstallProfile) -> dict[str, str]:
    """Env name -> secret reference, for the keys clickhouse-backup reads from its environment."""
    b = profile.clickhouse.backup
    if b.provider is BackupProvider.S3 and b.credentials and not b.access_key_id:
        raise ProfileError("clickhouse.backup.credentials alone cannot sign S3 requests",
                           ["clickhouse.backup.accessKeyId: required with credentials (the secret access key)"],
                           remedy="add accessKeyId, or better, drop the keys and give roleArn (IRSA)")
    if b.provider is BackupProvider.S3 and b.access_key_id:
        secret = b.secret_access_key or b.credentials
        assert secret is not None  # the profile's validator pairs them
        return {"S3_ACCESS_KEY": b.access_key_id, "S3_SECRET_KEY": secret}
    if b.provider is BackupProvider.GCS and b.credentials:
        return {"GCS_CREDENTIALS_JSON": b.credentials}
    if b.provider is BackupProvider.AZURE and b.credentials:
        return {"AZBLOB_ACCOUNT_KEY": b.credentials}
    return {}


def backup_keep(profile: InstallProfile) -> int:
    """BACKUP_KEEP: the profile's `keep`, else the runs the schedule makes in retentionDays."""
    b = profile.clickhouse.backup
    if b.keep is not None:
        return b.keep
    return max(1, b.retention_days * _runs_per_day(b.schedule))


def _runs_per_day(schedule: str) -> int:
    minute, hour, day, _, weekday = schedule.split()

    def count(text: str, span: int) -> int | None:
        if text == "*":
            return span
        if re.fullmatch(r"\*/[0-9]+", text):
            return -(-span // int(text[2:]))
        if re.fullmatch(r"[0-9]+(,[0-9]+)*", text):
            return len(text.split(","))
        return None  # ranges and names: too rich to count here, one run a day is the safe floor

    if day != "*" or weekday != "*":
        return 1
    per_hour, hours = count(minute, 60), count(hour, 24)
    return max(1, (per_hour or 1) * (hours or 1))


def _provider_block(profile: InstallProfile, keys: dict[str, str]) -> tuple[JSON, str, dict[str, str],
                                                                          dict[str, str]]:
    """(the provider's config block, the identity in words, ServiceAccount annotations, pod labels)."""
    b = profile.clickhouse.backup
    path = b.prefix.strip("/")
    if b.provider is BackupProvider.S3:
        block: JSON = {"bucket": b.bucket, "region": b.region or profile.target.region or "", "path": path,
                       "compression_format": "tar"}
        if b.role_arn:
            return block, f"IRSA role {b.role_arn}", {"eks.amazonaws.com/role-arn": b.role_arn}, {}
        return block, "static keys" if keys else "the node's default AWS credentials", {}, {}
    if b.provider is BackupProvider.GCS:
        block = {"bucket": b.bucket, "path": path, "compression_format": "tar"}
        if b.gcp_service_account:
            block["sa_email"] = b.gcp_service_account
            return (block, f"GKE workload identity {b.gcp_service_account}",
                    {"iam.gke.io/gcp-service-account": b.gcp_service_account}, {})
        return block, "a service-account key" if keys else "the node's default Google credentials", {}, {}
    block = {"account_name": b.account or "", "container": b.bucket, "path": path, "compression_format": "tar"}
    if b.azure_client_id:
        block["use_managed_identity"] = True
        return (block, f"Azure workload identity (managed identity {b.azure_client_id})",
                {"azure.workload.identity/client-id": b.azure_client_id}, {"azure.workload.identity/use": "true"})
    block["use_managed_identity"] = not keys
    return block, "a storage account key" if keys else "the node's managed identity", {}, {}


def backup_config(profile: InstallProfile) -> BackupConfig:
    """The backup config for the profile's provider, preferring the cloud's workload identity. Without
    a bucket (the sandbox) backups stay on the data volume: remote_storage none."""
    b = profile.clickhouse.backup
    keys = _static_keys(profile) if b.bucket else {}
    # keep_remote stays 0: the CronJob keeps BACKUP_KEEP per database, which one global count cannot.
    general: JSON = {"remote_storage": _STORAGE[b.provider] if b.bucket else "none",
                     "backups_to_keep_local": -1 if b.bucket else 0, "backups_to_keep_remote": 0,
                     "log_level": "info", "allow_empty_backups": True}
    doc: JSON = {"general": general, "clickhouse": {"host": "localhost", "port": 9000, "timeout": "30m"},
                 # Loopback only: the API deletes backups and takes no password; the integration
                 # tables of the server in the same pod are its only callers.
                 "api": {"listen": f"127.0.0.1:{BACKUP_API_PORT}", "create_integration_tables": True,
                         "integration_tables_host": "127.0.0.1", "allow_parallel": False}}
    annotations: dict[str, str] = {}
    labels: dict[str, str] = {}
    identity = "no bucket: backups stay on the data volume"
    if b.bucket:
        block, identity, annotations, labels = _provider_block(profile, keys)
        doc[general["remote_storage"]] = block
    text = yaml.safe_dump(doc, sort_keys=False)
    return BackupConfig(
        provider=general["remote_storage"], text=text, secret=_config_secret(profile, text), identity=identity,
        credentials=_credentials_spec(keys), env=_credential_env(keys),
        service_account_annotations=annotations, pod_labels=labels)


def _config_secret(profile: InstallProfile, text: str) -> JSON:
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": BACKUP_CONFIG_SECRET, "namespace": namespace(profile), "labels": _labels("backup")},
        "data": {"backup-config.yml": base64.b64encode(text.encode()).decode()},
    }


def _credentials_spec(keys: dict[str, str]) -> SecretSpec | None:
    own = {k: v for k, v in keys.items() if parse_ref(v).kind is not RefKind.K8S}
    if not own:
        return None
    return SecretSpec(BACKUP_CREDENTIALS_SECRET, "ClickHouse backup bucket keys",
                      {k: SecretEntry(ref=v) for k, v in own.items()})


def _credential_env(keys: dict[str, str]) -> list[JSON]:
    env = []
    for name, ref in keys.items():
        parsed = parse_ref(ref)
        if parsed.kind is RefKind.K8S:
            env.append(_secret_env(name, *parsed.k8s_secret))  # a Secret already in the cluster
        else:
            env.append(_secret_env(name, BACKUP_CREDENTIALS_SECRET, name))
    return env


# ---- the setup Job and the backup CronJob ------------------------------------------------------

def _client_env(profile: InstallProfile, user: str) -> list[JSON]:
    return [
        {"name": "CH_USER", "value": user},
        _secret_env("CH_PASSWORD", SECRET_NAME, USERS[user]),
        {"name": "CH_HOST", "value": service_endpoints(profile).host},
        {"name": "CH_DATABASE", "value": DATABASE},
        {"name": "CH_CLUSTER", "value": CLUSTER},
        {"name": "CH_NAMESPACE", "value": namespace(profile)},
        {"name": "CHI", "value": profile.clickhouse.installation},
    ]


def _script_pod(profile: InstallProfile, name: str, script: str, env: list[JSON]) -> JSON:
    return {
        "metadata": {"labels": _labels(name)},
        "spec": {
            "restartPolicy": "Never",
            "imagePullSecrets": _pull_secrets(profile),
            "securityContext": {"runAsNonRoot": True, "runAsUser": 101, "runAsGroup": 101},
            "containers": [{
                "name": name,
                "image": _image(profile, SERVER_IMAGE),
                "command": ["/bin/bash", "-c", script],
                "env": env,
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
            }],
        },
    }


def setup_job(profile: InstallProfile, *, wait_seconds: int = 900) -> JSON:
    """Job clickhouse-setup: waits for :8123/ping, creates database highflame on the cluster, and
    sets a 3-day TTL on the system log tables."""
    env = [*_client_env(profile, "highflame_admin"),
           {"name": "WAIT_SECONDS", "value": str(wait_seconds)},
           {"name": "LOG_TABLES", "value": ",".join(SYSTEM_LOG_TABLES)},
           {"name": "TTL_DAYS", "value": str(SYSTEM_LOG_TTL_DAYS)}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": SETUP_JOB, "namespace": namespace(profile), "labels": _labels("setup")},
        "spec": {"backoffLimit": 4, "activeDeadlineSeconds": wait_seconds + 600,
                 "template": _script_pod(profile, SETUP_JOB, SETUP_SCRIPT, env)},
    }


def backup_cronjob(profile: InstallProfile) -> JSON:
    """CronJob clickhouse-backup: on the profile's schedule, a remote backup per database on the first
    replica of each shard, keeping the last BACKUP_KEEP of each."""
    b = profile.clickhouse.backup
    env = [*_client_env(profile, "highflame_backup"),
           {"name": "SHARDS", "value": str(profile.clickhouse.shards)},
           {"name": "BACKUP_KEEP", "value": str(backup_keep(profile))},
           {"name": "BACKUP_LOCATION", "value": "remote" if b.bucket else "local"}]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": BACKUP_CRONJOB, "namespace": namespace(profile), "labels": _labels("backup")},
        "spec": {
            "schedule": b.schedule,
            "concurrencyPolicy": "Forbid",  # two runs at once would race over the same retention list
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {"backoffLimit": 1,
                                     "template": _script_pod(profile, BACKUP_CRONJOB, BACKUP_SCRIPT, env)}},
        },
    }


# ---- the plan's view: what is applied, in order, and what uninstall does with it ---------------

@dataclass(frozen=True)
class AppliedObject:
    """One object hfwizard applies (server-side, its field manager) and how the plan treats it."""

    step: str  # the plan step it belongs to
    obj: JSON
    wait: Literal["none", "installation", "job"]  # installation: readiness(); job: Complete condition
    on_uninstall: Literal["delete", "keep"]
    why: str


def applied_objects(profile: InstallProfile) -> list[AppliedObject]:
    """In order, after the operator release: Keeper before the server (it needs Keeper's Service),
    then the setup Job (needs the server), then the backup CronJob (needs the database)."""
    config = backup_config(profile)
    return [
        AppliedObject("clickhouse/identity", service_account(profile), "none", "delete",
                      "the pods' cloud identity; nothing else uses it"),
        AppliedObject("clickhouse/identity", config.secret, "none", "delete",
                      "backup-config.yml holds no secret; rendered again from the profile"),
        AppliedObject("clickhouse/keeper", keeper_installation(profile), "installation", "delete",
                      "the operator removes its StatefulSets and Services; the Keeper volumes stay (Retain)"),
        AppliedObject("clickhouse/server", clickhouse_installation(profile), "installation", "delete",
                      "the operator removes its StatefulSets and Services; the data volumes stay (Retain)"),
        AppliedObject("clickhouse/setup", setup_job(profile), "job", "delete",
                      "a finished one-off; idempotent when run again"),
        AppliedObject("clickhouse/backup", backup_cronjob(profile), "none", "delete",
                      "schedules backups only while ClickHouse is installed; the backups stay in the bucket"),
    ]


def secret_specs(profile: InstallProfile) -> list[SecretSpec]:
    """Secrets written from references or generated; `clickhouse-secrets` is kept on uninstall: the
    retained volumes hold users whose passwords it has, and a reinstall must reuse them."""
    config = backup_config(profile)
    return [clickhouse_secret_spec(), *([config.credentials] if config.credentials else [])]
