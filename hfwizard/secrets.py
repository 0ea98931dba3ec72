"""Secret references (`env:`, `file:`, `keyring:`, `k8s:`) and how each one resolves.

A profile never holds a secret value, only a reference to where the value lives. Resolving gives a
`Secret` whose repr and str hide the value; every error names the reference, never what it held.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from hfwizard.errors import SecretError
from hfwizard.files import SECRET_LIMIT, read_bounded


class RefKind(StrEnum):
    ENV = "env"
    FILE = "file"
    KEYRING = "keyring"
    K8S = "k8s"


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_K8S_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

_EXAMPLE = {"env": "env:PGPASSWORD", "file": "file:/path/to/secret", "keyring": "keyring:SERVICE/NAME",
            "k8s": "k8s:SECRET/KEY"}
REF_HELP = "env:NAME, file:PATH, keyring:SERVICE/NAME or k8s:SECRET/KEY"


@dataclass(frozen=True)
class SecretRef:
    """A parsed reference: where a secret lives, never the secret itself."""

    kind: RefKind
    target: str  # NAME, PATH, SERVICE/NAME or SECRET/KEY

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.target}"

    @property
    def k8s_secret(self) -> tuple[str, str]:
        name, _, key = self.target.partition("/")
        return name, key


def parse_ref(text: str) -> SecretRef:
    """Parse `text` as a reference; the error never repeats `text` (it may be a pasted secret)."""
    kind, sep, target = text.partition(":")
    if sep and kind in RefKind.__members__.values() and not target.strip():
        raise ValueError(f"{kind}: reference names nothing after the colon; write it as {_EXAMPLE[kind]}")
    if not sep or kind not in RefKind.__members__.values() or not target:
        raise ValueError(f"must be a secret reference ({REF_HELP}), not a literal value")
    ref = SecretRef(RefKind(kind), target)
    if ref.kind is RefKind.ENV and not _ENV_NAME.match(target):
        raise ValueError(f"env: reference needs a variable name like env:PGPASSWORD, got {str(ref)!r}")
    if ref.kind is RefKind.KEYRING and not _split_two(target):
        raise ValueError(f"keyring: reference needs SERVICE/NAME, got {str(ref)!r}")
    if ref.kind is RefKind.K8S:
        parts = _split_two(target)
        if not parts or not _K8S_NAME.match(parts[0]) or not _K8S_KEY.match(parts[1]):
            raise ValueError(
                f"k8s: reference needs SECRET/KEY with a lowercase DNS-1123 secret name, got {str(ref)!r}")
    return ref


def _split_two(target: str) -> tuple[str, str] | None:
    first, sep, second = target.partition("/")
    return (first, second) if sep and first and second else None


def _check_ref(value: str) -> str:
    parse_ref(value)
    return value


def _refuse_non_str(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"must be a secret reference ({REF_HELP}) written as a string")
    return value.strip()


# A profile field that holds a reference. Validation errors for it never echo the input (see profile.py).
Ref = Annotated[str, BeforeValidator(_refuse_non_str), AfterValidator(_check_ref)]


class Secret:
    """A resolved secret value. Its repr and str are masked so it cannot slip into logs or messages."""

    __slots__ = ("_value", "ref")

    def __init__(self, ref: SecretRef, value: str) -> None:
        self.ref = ref
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.ref}, ****)"

    __str__ = __repr__


def resolve(ref: str | SecretRef, *, base_dir: Path | None = None) -> Secret:
    """Resolve a reference to its value. `k8s:` references are resolved in the cluster by the engine."""
    parsed = parse_ref(ref) if isinstance(ref, str) else ref
    match parsed.kind:
        case RefKind.ENV:
            value = os.environ.get(parsed.target)
            if value is None or value == "":
                raise SecretError(f"secret reference {parsed}: environment variable {parsed.target} is not set",
                                  remedy=f"export {parsed.target}=... before running, or use another reference")
            return Secret(parsed, value)
        case RefKind.FILE:
            path = Path(os.path.expanduser(parsed.target))
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            if not os.path.lexists(path):
                raise SecretError(f"secret reference {parsed}: file {path} does not exist",
                                  remedy="create the file (mode 0600) or point the reference elsewhere")
            raw = read_bounded(path, what=f"secret reference {parsed}", limit=SECRET_LIMIT, error=SecretError)
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise SecretError(f"secret reference {parsed}: {path} is not UTF-8 text",
                                  remedy="a secret file holds the value as text") from None
            # A trailing newline from `echo > file` is never part of a password or key.
            value = value.rstrip("\r\n")
            if not value:
                raise SecretError(f"secret reference {parsed}: file {path} is empty")
            return Secret(parsed, value)
        case RefKind.KEYRING:
            return _resolve_keyring(parsed)
        case RefKind.K8S:
            raise SecretError(f"secret reference {parsed} lives in the cluster and is read there",
                              remedy="the install reads k8s: references from the target namespace")
    raise AssertionError(parsed.kind)  # pragma: no cover


def _resolve_keyring(ref: SecretRef) -> Secret:
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    service, name = ref.target.split("/", 1)
    try:
        value = keyring.get_password(service, name)
    except NoKeyringError:
        raise SecretError(
            f"secret reference {ref}: no system keyring is available on this machine",
            remedy="use env:NAME or file:PATH instead (many bastion hosts have no keyring service)") from None
    except KeyringError as exc:
        raise SecretError(f"secret reference {ref}: the keyring refused ({type(exc).__name__})") from None
    if value is None:
        raise SecretError(f"secret reference {ref}: no entry {name!r} in keyring service {service!r}",
                          remedy=f"store it with: keyring set {service} {name}")
    return Secret(ref, value)


def store_in_keyring(service: str, name: str, value: str) -> SecretRef:
    """Store a typed-once secret in the keyring and return the reference that finds it again."""
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    try:
        keyring.set_password(service, name, value)
    except NoKeyringError:
        raise SecretError("no system keyring is available on this machine",
                          remedy="use an env:NAME or file:PATH reference instead") from None
    except KeyringError as exc:
        raise SecretError(f"the keyring refused to store {service}/{name} ({type(exc).__name__})") from None
    return SecretRef(RefKind.KEYRING, f"{service}/{name}")
