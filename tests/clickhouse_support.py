"""Shared helpers of the ClickHouse tests: the real operator chart, its CRDs and their schemas."""

from __future__ import annotations

import copy
import functools
import io
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.platform_support import CHARTS, CHARTS_MISSING

# The upstream chart, from the copy of Highflame's chart repository ($HFWIZARD_HIGHFLAME_DIR overrides).
OPERATOR_CHART = CHARTS / "altinity-clickhouse-operator-0.25.6.tgz"


def operator_chart() -> Path:
    """The operator chart's tarball; the calling test skips, saying why, where the copy is absent."""
    if not OPERATOR_CHART.is_file():
        pytest.skip(CHARTS_MISSING)
    return OPERATOR_CHART


def operator_crds() -> dict[str, dict[str, Any]]:
    """The CRDs in the chart's crds/ folder, by kind."""
    return _crds(operator_chart())


@functools.cache
def _crds(chart: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with tarfile.open(chart) as tar:
        for member in tar.getmembers():
            if "/crds/" in member.name and member.name.endswith(".yaml"):
                handle = tar.extractfile(member)
                assert handle is not None
                for doc in yaml.safe_load_all(io.TextIOWrapper(handle, encoding="utf-8")):
                    if doc:
                        out[doc["spec"]["names"]["kind"]] = doc
    return out


def _as_json_schema(node: Any) -> Any:
    """OpenAPI v3 (as Kubernetes uses it) to JSON Schema: `nullable` and int-or-string become types."""
    if isinstance(node, list):
        return [_as_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_json_schema(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def crd_schema(kind: str) -> dict[str, Any]:
    crd = operator_crds()[kind]
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return _as_json_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))


def unknown_fields(obj: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the API server would prune without a word: not in the structural schema."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            if key in props:
                found += unknown_fields(value, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += unknown_fields(value, extra, f"{path}.{key}")
            elif extra is not True:
                found.append(f"{path}.{key}")
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(obj):
            found += unknown_fields(item, schema["items"], f"{path}[{index}]")
    return found


def validate(obj: dict[str, Any]) -> None:
    """Validate a custom object against its CRD's openAPIV3Schema, refusing fields it would prune."""
    schema = crd_schema(obj["kind"])
    jsonschema.validate(obj, schema, cls=jsonschema.Draft7Validator)
    pruned = unknown_fields({k: v for k, v in obj.items() if k != "metadata"}, schema)
    assert not pruned, f"{obj['kind']} fields the API server would drop: {pruned}"


def users_secret() -> dict[str, Any]:
    """`clickhouse-secrets` as the plan's clickhouse/secrets step writes it (test passwords): the
    server pods read it, and the emulated kubelet holds them back while it is missing."""
    from hfwizard.platform import clickhouse as ch

    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": ch.SECRET_NAME},
            "stringData": {key: f"test-{key.lower()}" for key in ch.USERS.values()}}
