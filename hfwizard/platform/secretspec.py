"""Secret specs: which Kubernetes Secrets the platform needs and where each key's value comes from.

A spec never holds a secret value: each key names a reference (`env:`, `file:`, `keyring:`, `k8s:`), a
non-secret default, or how the value is generated. The engine turns a spec into Secret data with
`materialize` (references, through a resolver it passes in) or `generate` (generated keys, keeping the ones
the cluster already holds so resume and upgrade reuse them).
"""

from __future__ import annotations

import base64
import json
import secrets as pysecrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

GenerateKind = Literal["hex", "urlsafe", "rsa-private", "rsa-public"]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "hfwizard"
"""The label (and its value) on every Secret and namespace hfwizard makes: it never overwrites one without it."""


@dataclass(frozen=True)
class Generate:
    """How a key's value is made once: random bytes (`size` of them) or an RSA key pair."""

    kind: GenerateKind
    size: int = 32
    """Random bytes for hex/urlsafe; key bits for rsa-private."""
    from_key: str | None = None
    """For rsa-public: the key (in the same Secret) holding the private key it is derived from."""


@dataclass(frozen=True)
class SecretEntry:
    """Where one key's value comes from; exactly one of ref, default, generate is the source."""

    ref: str | None = None
    """A secret reference; the engine resolves it (a `k8s:` one by reading that Secret)."""
    template: str | None = None
    """Text in which `{}` is replaced by the resolved reference (e.g. a connection URL); holds no secret."""
    url_quote: bool = False
    """Percent-encode the resolved value before it goes into `template`."""
    default: str | None = None
    """Non-secret content used as is (a built-in default configuration file)."""
    generate: Generate | None = None
    docker_server: str | None = None
    """Build a .dockerconfigjson for this registry from `docker_username` and the resolved reference."""
    docker_username: str | None = None

    def __post_init__(self) -> None:
        sources = [self.ref is not None, self.default is not None, self.generate is not None]
        if sum(sources) != 1:
            raise ValueError("a secret entry needs exactly one source: ref, default or generate")


@dataclass(frozen=True)
class SecretSpec:
    """One Kubernetes Secret the install creates in the platform's namespace."""

    name: str
    purpose: str
    entries: dict[str, SecretEntry] = field(default_factory=dict)
    type: str = "Opaque"

    @property
    def references(self) -> list[str]:
        """Every reference the spec reads (what preflight should resolve)."""
        return [e.ref for e in self.entries.values() if e.ref is not None]

    @property
    def generated_keys(self) -> list[str]:
        return [k for k, e in self.entries.items() if e.generate is not None]

    @property
    def is_generated(self) -> bool:
        return bool(self.entries) and all(e.generate is not None for e in self.entries.values())


def part(spec: SecretSpec, *, generated: bool) -> SecretSpec:
    """Only the spec's generated keys (or only the others): one Secret may hold both (`clickhouse-secrets`
    copies one key through a reference and generates the rest), and each half is made its own way."""
    entries = {k: e for k, e in spec.entries.items() if (e.generate is not None) is generated}
    return SecretSpec(spec.name, spec.purpose, entries, spec.type)


def materialize(spec: SecretSpec, resolve: Callable[[str], str]) -> dict[str, str]:
    """The Secret's string data: references resolved through `resolve`, defaults as they are.

    Generated keys are not made here (use `generate`, which keeps what the cluster has).
    """
    out: dict[str, str] = {}
    for key, entry in spec.entries.items():
        if entry.generate is not None:
            raise ValueError(f"{spec.name}/{key} is generated: use generate() with the Secret's current data")
        if entry.default is not None:
            out[key] = entry.default
            continue
        assert entry.ref is not None
        value = resolve(entry.ref)
        if entry.docker_server is not None:
            value = _dockerconfig(entry.docker_server, entry.docker_username or "", value)
        if entry.url_quote:
            value = quote(value, safe="")
        if entry.template is not None:
            value = entry.template.replace("{}", value)
        out[key] = value
    return out


def generate(spec: SecretSpec, existing: Mapping[str, str] | None = None) -> dict[str, str]:
    """Data for a generated Secret: keys the cluster already holds are kept, missing ones are made.

    An RSA public key is derived from its private key, so a kept private key keeps its public half.
    """
    have = dict(existing or {})
    out: dict[str, str] = {}
    later: list[tuple[str, Generate]] = []
    for key, entry in spec.entries.items():
        if entry.generate is None:
            raise ValueError(f"{spec.name}/{key} is not generated")
        if entry.generate.kind == "rsa-public":
            later.append((key, entry.generate))
        elif have.get(key):
            out[key] = have[key]
        else:
            out[key] = _make(entry.generate)
    for key, gen in later:
        private = out.get(gen.from_key or "")
        if not private:
            raise ValueError(f"{spec.name}/{key} derives from {gen.from_key!r}, which the spec does not generate")
        out[key] = rsa_public_pem(private)
    return out


def _make(gen: Generate) -> str:
    if gen.kind == "hex":
        return pysecrets.token_hex(gen.size)
    if gen.kind == "urlsafe":
        return pysecrets.token_urlsafe(gen.size)
    if gen.kind == "rsa-private":
        return rsa_private_pem(gen.size)
    raise ValueError(f"cannot make a {gen.kind} value on its own")


def rsa_private_pem(bits: int = 3072) -> str:
    """A new RSA private key, PKCS#8 PEM, unencrypted (it lives only in a Kubernetes Secret)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def rsa_public_pem(private_pem: str) -> str:
    """The SubjectPublicKeyInfo PEM of an RSA private key."""
    from cryptography.hazmat.primitives import serialization

    # The private key is one we generated (now, or on an earlier run, read back from our own Secret): its
    # consistency check costs 0.1-0.4 s of CPU per 3072-bit key, holding the GIL, and proves nothing here.
    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None,
                                             unsafe_skip_rsa_key_validation=True)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def _dockerconfig(server: str, username: str, token: str) -> str:
    auth = base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
    return json.dumps({"auths": {server: {"username": username, "password": token, "auth": auth}}})


def describe(spec: SecretSpec) -> dict[str, object]:
    """A spec as plain data for `hfwizard render` and the journal: where each key comes from, no value."""
    keys: dict[str, str] = {}
    for key, e in spec.entries.items():
        if e.generate is not None:
            keys[key] = f"generated once ({e.generate.kind}), kept on resume and upgrade"
        elif e.default is not None:
            keys[key] = "built-in default"
        else:
            keys[key] = f"from {e.ref}" + (" (in a template)" if e.template else "")
    return {"name": spec.name, "type": spec.type, "purpose": spec.purpose, "keys": keys}
