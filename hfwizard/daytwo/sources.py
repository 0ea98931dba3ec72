"""Where the masker's secret values come from: the profile's references and the install's Secrets."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfwizard.daytwo.bundle import describe_error
from hfwizard.errors import SecretError
from hfwizard.secrets import RefKind, parse_ref, resolve

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "hfwizard"
HELM_RELEASE_TYPE = "helm.sh/release.v1"
# Keys of Secrets hfwizard did not write whose values are secret; the rest (usernames, hosts,
# database names) stay readable, or a bundle would mask the namespace's own name everywhere.
SECRET_KEY_NAMES = re.compile(r"(?i)pass|secret|token|key|auth|cred|cert|\.dockerconfigjson|\.dockercfg")


@dataclass
class ProfileSecrets:
    """The values behind a profile's references, and the references that could not be read here."""

    values: set[str] = field(default_factory=set)
    k8s_refs: list[str] = field(default_factory=list)  # resolved in the cluster: see cluster_secret_values
    unresolved: list[str] = field(default_factory=list)  # "env:NAME: why", never a value


def profile_secret_values(document: Mapping[str, Any], base_dir: Path | None = None) -> ProfileSecrets:
    """Resolve every `env:`, `file:` and `keyring:` reference in a profile document (the YAML as a
    mapping); a reference that no longer resolves is listed, not fatal."""
    out = ProfileSecrets()
    for text in dict.fromkeys(_strings(document)):
        try:
            ref = parse_ref(text)
        except ValueError:
            continue
        if ref.kind is RefKind.K8S:
            out.k8s_refs.append(text)
            continue
        try:
            out.values.add(resolve(ref, base_dir=base_dir).reveal())
        except SecretError as exc:
            out.unresolved.append(exc.message)
        except Exception as exc:  # a keyring backend's own failure
            out.unresolved.append(f"secret reference {ref}: {describe_error(exc)}")
    return out


def cluster_secret_values(api_client: Any, namespace: str, *, k8s_refs: Iterable[str] = (),
                          request_timeout: float = 10.0) -> set[str]:
    """Values of the namespace's Secrets: every key of those hfwizard manages (generated passwords
    among them), the keys `k8s_refs` name, and keys whose name says secret in the others. Helm's
    release records are skipped (they are compressed releases, not secrets the platform reads)."""
    from kubernetes import client

    wanted = {parse_ref(r).k8s_secret for r in k8s_refs}
    listing = client.CoreV1Api(api_client).list_namespaced_secret(namespace, _request_timeout=request_timeout)
    values: set[str] = set()
    for secret in listing.items:
        if secret.type == HELM_RELEASE_TYPE:
            continue
        name = secret.metadata.name
        managed = (secret.metadata.labels or {}).get(MANAGED_BY_LABEL) == MANAGED_BY
        for key, encoded in (secret.data or {}).items():
            if managed or (name, key) in wanted or SECRET_KEY_NAMES.search(key):
                value = _decode(encoded)
                if value:
                    values.add(value)
                    values |= _nested_values(value)
    return values


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _strings(value)


def _decode(encoded: str | None) -> str | None:
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None  # binary data: no text form to find in logs


def _nested_values(value: str) -> set[str]:
    """The password inside a docker config's `auth` ("user:password", base64) and its `password`."""
    out: set[str] = set()
    if '"auths"' not in value:
        return out
    for match in re.finditer(r'"(auth|password|identitytoken)"\s*:\s*"([^"]+)"', value):
        key, inner = match.groups()
        out.add(inner)
        if key == "auth":
            decoded = _decode(inner)
            if decoded and ":" in decoded:
                out.add(decoded.split(":", 1)[1])
    return out
