"""The emulator's shared vocabulary: API errors as Status objects, resource types, watch events."""

from __future__ import annotations

import datetime
import gzip
import importlib.resources
import json
from typing import Any, cast

import attrs
import kmock

__all__ = ["JSON", "ApiError", "ResourceType", "WatchEvent", "bundled_discovery", "conflict", "not_found", "now"]

JSON = dict[str, Any]


class ApiError(Exception):
    """A Kubernetes API error: rendered as a `Status` object so client-go maps it to its typed errors."""

    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> JSON:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def not_found(info: ResourceType, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{info.qualified} "{name}" not found',
        {"name": name, "group": info.group, "kind": info.plural},
    )


def conflict(info: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {info.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name, "group": info.group, "kind": info.plural},
    )


@attrs.frozen
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self) -> str:
        return f"{self.group}/{self.version}/{self.plural}"

    def kmock_resource(self) -> kmock.resource:
        return kmock.resource(group=self.group, version=self.version, plural=self.plural)


def bundled_discovery() -> list[JSON]:
    data = importlib.resources.files("kmock._internal").joinpath("resources.json.gz").read_bytes()
    docs = cast(list[JSON], json.loads(gzip.decompress(data)))
    for doc in docs:
        # The apiserver's lists come from a k3s cluster; kmock serves "/v1" for the core group.
        doc["groupVersion"] = doc["groupVersion"].lstrip("/")
    return docs




def now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------------
# the emulator


@attrs.frozen
class WatchEvent:
    """One change in the emulator: the controller player and watch streams consume these."""

    type: str  # ADDED, MODIFIED, DELETED
    resource: ResourceType
    object: JSON
    resource_version: int

