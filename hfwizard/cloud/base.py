"""The cloud interface: credentials, identities, clusters, data services and buckets, for every cloud."""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hfwizard.errors import Failed


class Cloud(StrEnum):
    AWS = "aws"
    GCP = "gcp"
    AZURE = "azure"


class Sealed:
    """Secret values a credential carries in memory (static keys or a client secret resolved from the
    profile's references), so they never have to be written to a file or the process environment.

    repr/str show only the names; `reveal` is the one way to a value. Pickling is refused, so the values
    cannot ride along into a journal, a cache or a child process; copies share the one instance.
    """

    __slots__ = ("_values",)

    def __init__(self, **values: str) -> None:
        self._values = dict(values)

    def reveal(self, name: str) -> str | None:
        return self._values.get(name)

    def __repr__(self) -> str:
        return f"Sealed({', '.join(sorted(self._values))})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("sealed credential secrets are never pickled")

    def __copy__(self) -> Sealed:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Sealed:
        return self


@dataclass(frozen=True)
class FoundCredential:
    """A credential source found on this machine. It holds where the secret lives, never the secret,
    except for the in-memory kinds made from the profile's references ("aws-static",
    "azure-client-secret"), whose values sit in `sealed`: masked, and out of repr and comparisons.

    `details` are non-secret facts for the screen (profile region, role ARN, tenant, a masked key id).
    """

    cloud: Cloud
    kind: str  # "aws-profile", "aws-sso", "aws-assume-role", "aws-env", "gcp-adc", "azure-cli", ...
    name: str  # what the operator calls it: a profile name, a key file's account, a subscription
    source: str  # where it came from: "~/.aws/config [profile prod]", "environment (AZURE_CLIENT_ID)"
    region: str | None = None  # the default region/location the source names, if any
    details: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    sealed: Sealed | None = field(default=None, repr=False, hash=False, compare=False)


@dataclass(frozen=True)
class Identity:
    """Who a credential turned out to be."""

    cloud: Cloud
    account: str  # AWS account id, GCP project id, Azure subscription id
    principal: str  # user/role ARN, service-account or user e-mail, user principal name or app id
    tenant: str | None = None  # Azure tenant id
    details: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Finding:
    """A verdict on one thing: `ok`, a one-line message, and what to run or fix when not ok.

    `code` is stable ("aws/sso-login-needed") so screens and tests can branch on it. Never holds a secret.
    """

    ok: bool
    code: str
    message: str
    remedy: str | None = None

    def __str__(self) -> str:
        return self.message if not self.remedy else f"{self.message} -> {self.remedy}"


@dataclass(frozen=True)
class Validation:
    """The result of validating a credential live: the identity when it worked, and the findings."""

    credential: FoundCredential
    identity: Identity | None
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return self.identity is not None and all(f.ok for f in self.findings)


@dataclass(frozen=True)
class NodePool:
    """A node group (EKS), node pool (GKE) or agent pool (AKS)."""

    name: str
    instance_type: str | None
    cores: int | None  # per node; None when the size could not be resolved
    memory_gib: float | None  # per node
    count: int | None  # current or desired node count
    min_count: int | None = None
    max_count: int | None = None


@dataclass(frozen=True)
class ClusterInfo:
    cloud: Cloud
    name: str
    location: str  # AWS region, GCP region/zone, Azure region
    version: str | None
    endpoint: str | None  # https URL of the API server
    ca_data: str | None  # base64 PEM, as kubeconfig's certificate-authority-data wants it
    node_pools: tuple[NodePool, ...] = ()
    status: str | None = None
    id: str | None = None  # ARN, GKE self link, Azure resource id
    details: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def node_count(self) -> int:
        return sum(p.count or 0 for p in self.node_pools)


@dataclass(frozen=True)
class DatabaseInfo:
    cloud: Cloud
    name: str
    engine: str  # "postgres"
    version: str | None  # "17.2" where the cloud says it, else the major ("17")
    endpoint: str | None  # host name or address
    port: int | None
    location: str | None
    instance_class: str | None  # db.m6g.xlarge, db-custom-4-8192, Standard_D4ds_v5
    cores: int | None = None
    memory_gib: float | None = None
    status: str | None = None
    id: str | None = None
    details: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class CacheInfo:
    cloud: Cloud
    name: str
    engine: str  # "redis" or "valkey"
    version: str | None
    endpoints: tuple[str, ...]  # "host:port", the one to connect to first
    port: int | None
    cluster_mode: bool | None  # None when the cloud did not say and nothing else showed it
    node_type: str | None
    memory_gib: float | None  # per node (or per shard primary)
    shards: int | None = None
    replicas_per_shard: int | None = None
    tls: bool | None = None
    location: str | None = None
    status: str | None = None
    id: str | None = None
    details: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class BucketInfo:
    cloud: Cloud
    name: str  # S3/GCS bucket; Azure "account/container"
    location: str | None = None
    url: str | None = None  # s3://, gs://, or the container's https URL
    details: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


class CloudError(Failed):
    """A cloud call that failed for a reason the operator can fix; `finding` says which and how."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message, remedy=finding.remedy)
        self.finding = finding


@runtime_checkable
class CloudProvider(Protocol):
    """One cloud's discovery. Every method is synchronous and bounded by the options' timeout:
    call it from a thread (asyncio.to_thread or a Textual thread worker), never on the UI loop.

    list_* and kubeconfig_for raise CloudError (with a Finding) on auth, permission or reachability
    problems; discover_credentials never touches the network; validate and bucket_probe never raise
    for cloud problems, they report them as findings.
    """

    cloud: Cloud

    def discover_credentials(self) -> list[FoundCredential]: ...

    def validate(self, credential: FoundCredential) -> Validation: ...

    def list_clusters(
        self, credential: FoundCredential, *, region: str | None = None
    ) -> list[ClusterInfo]: ...

    def list_postgres(
        self, credential: FoundCredential, *, region: str | None = None
    ) -> list[DatabaseInfo]: ...

    def list_redis(self, credential: FoundCredential, *, region: str | None = None) -> list[CacheInfo]: ...

    def list_buckets(self, credential: FoundCredential) -> list[BucketInfo]: ...

    def kubeconfig_for(
        self,
        credential: FoundCredential,
        cluster: ClusterInfo,
        path: Path,
        *,
        static_token: bool = False,
        context_name: str | None = None,
        merge: bool = False,
    ) -> Path: ...

    def bucket_probe(self, credential: FoundCredential, bucket: str) -> Finding: ...


# --- helpers shared by the three clouds -------------------------------------------------------------

_SDK_LOCK = threading.Lock()
_SDK_LOADED: set[str] = set()


def load_sdk(*modules: str) -> None:
    """Import a cloud SDK's modules before first use, one thread at a time.

    Providers run in worker threads, and the preflight signs in for several checks at once. Two threads
    importing azure-core for the first time through different modules deadlock on its circular imports
    (Python raises _DeadlockError in one, ImportError in the other); one lock around the first import
    of each SDK rules that out. After that it costs a set lookup.
    """
    if _SDK_LOADED.issuperset(modules):
        return
    with _SDK_LOCK:
        for name in modules:
            if name not in _SDK_LOADED:
                importlib.import_module(name)
                _SDK_LOADED.add(name)



def home_relative(path: Path | str) -> str:
    """`path` with the home directory shown as ~, for `source` strings a person reads."""
    text = str(path)
    home = str(Path.home())
    return "~" + text[len(home) :] if home not in ("", "/") and text.startswith(home + os.sep) else text


def mask(value: str, keep: int = 4) -> str:
    """A non-reversible hint of an identifier (an access key id): its last characters only."""
    return "…" + value[-keep:] if len(value) > keep else "…"


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret value replaced; for messages that quote a library's error text."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def jwt_claims(token: str) -> dict[str, Any]:
    """The unverified claims of a JWT access token (tenant, object id), or {} when it is not one.

    Used only to say who a token belongs to; nothing is trusted on the strength of it.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def exec_credential(token: str, expires_at_iso: str | None) -> str:
    """The JSON a kubectl/client-go `exec` credential plugin prints on stdout."""
    status: dict[str, str] = {"token": token}
    if expires_at_iso:
        status["expirationTimestamp"] = expires_at_iso
    return json.dumps(
        {"kind": "ExecCredential", "apiVersion": EXEC_API_VERSION, "spec": {}, "status": status}
    )


EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


def exec_user(args: list[str], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A kubeconfig `user` that calls back into this Python for a fresh token (hfwizard.cloud.token).

    The interpreter path is absolute so kubectl, Helm's client-go and the kubernetes client all find it
    without the virtualenv being activated.
    """
    import sys

    spec: dict[str, Any] = {
        "apiVersion": EXEC_API_VERSION,
        "command": sys.executable,
        "args": ["-m", "hfwizard.cloud.token", *args],
        "interactiveMode": "Never",
        "provideClusterInfo": False,
    }
    if env:
        spec["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {"exec": spec}


def write_kubeconfig(
    path: Path, *, name: str, server: str, ca_data: str | None, user: dict[str, Any], merge: bool = False
) -> Path:
    """Write a one-cluster kubeconfig to `path` (mode 0600, atomically).

    `merge=True` adds the cluster, user and context to an existing file (replacing entries of the same
    name) and makes it current; otherwise an existing file is replaced. Writing to the operator's default
    kubeconfig (~/.kube/config or $KUBECONFIG) is refused unless `merge=True`: we never clobber it.
    """
    from ruamel.yaml import YAML

    path = Path(path).expanduser()
    defaults = {Path("~/.kube/config").expanduser().resolve()}
    defaults |= {
        Path(p).expanduser().resolve() for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p
    }
    if path.resolve() in defaults and not merge:
        raise CloudError(
            Finding(
                False,
                "kubeconfig/default-file",
                f"refusing to overwrite the default kubeconfig {home_relative(path)}",
                "pass another path, or ask to merge into it",
            )
        )
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [],
        "users": [],
        "contexts": [],
    }
    if merge and path.exists():
        loaded = yaml.load(path.read_text()) or {}
        if isinstance(loaded, dict):
            doc.update(loaded)
    for key, entry in (
        ("clusters", {"name": name, "cluster": cluster}),
        ("users", {"name": name, "user": user}),
        ("contexts", {"name": name, "context": {"cluster": name, "user": name}}),
    ):
        doc[key] = [e for e in (doc.get(key) or []) if e.get("name") != name] + [entry]
    doc["current-context"] = name
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written to a 0600 temp file in the same directory, then renamed: the file is never readable by
    # others, even for a moment, and a crash never leaves half a kubeconfig.
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            yaml.dump(doc, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
