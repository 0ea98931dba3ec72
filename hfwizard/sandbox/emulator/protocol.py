"""Decoding of client-go's protobuf request bodies (`k8s\0` + runtime.Unknown) into JSON objects."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from hfwizard.sandbox.emulator.api import JSON

__all__ = ["PROTOBUF", "decode_protobuf"]

PROTOBUF = "application/vnd.kubernetes.protobuf"

# Field numbers from k8s.io/api core/v1 and k8s.io/apimachinery meta/v1 generated.proto.
# A spec is {field number: (json name, kind)}; kind is "str", "bytes", "int", "bool", "time",
# ("msg", spec), ("map", value kind), ("list", kind).
_TIME = "time"
_OWNER_REF: dict[int, tuple[str, Any]] = {
    1: ("kind", "str"),
    3: ("name", "str"),
    4: ("uid", "str"),
    5: ("apiVersion", "str"),
    6: ("controller", "bool"),
    7: ("blockOwnerDeletion", "bool"),
}
_OBJECT_META: dict[int, tuple[str, Any]] = {
    1: ("name", "str"),
    2: ("generateName", "str"),
    3: ("namespace", "str"),
    4: ("selfLink", "str"),
    5: ("uid", "str"),
    6: ("resourceVersion", "str"),
    7: ("generation", "int"),
    8: ("creationTimestamp", _TIME),
    9: ("deletionTimestamp", _TIME),
    10: ("deletionGracePeriodSeconds", "int"),
    11: ("labels", ("map", "str")),
    12: ("annotations", ("map", "str")),
    13: ("ownerReferences", ("list", ("msg", _OWNER_REF))),
    14: ("finalizers", ("list", "str")),
}
_PROTO_KINDS: dict[str, dict[int, tuple[str, Any]]] = {
    "Secret": {
        1: ("metadata", ("msg", _OBJECT_META)),
        2: ("data", ("map", "bytes")),
        3: ("type", "str"),
        4: ("stringData", ("map", "str")),
        5: ("immutable", "bool"),
    },
    "ConfigMap": {
        1: ("metadata", ("msg", _OBJECT_META)),
        2: ("data", ("map", "str")),
        3: ("binaryData", ("map", "bytes")),
        4: ("immutable", "bool"),
    },
    "Namespace": {
        1: ("metadata", ("msg", _OBJECT_META)),
        2: ("spec", ("msg", {1: ("finalizers", ("list", "str"))})),
        3: ("status", ("msg", {1: ("phase", "str")})),
    },
    "ServiceAccount": {1: ("metadata", ("msg", _OBJECT_META)), 4: ("automountServiceAccountToken", "bool")},
    "DeleteOptions": {
        1: ("gracePeriodSeconds", "int"),
        2: ("preconditions", ("msg", {1: ("uid", "str"), 2: ("resourceVersion", "str")})),
        3: ("orphanDependents", "bool"),
        4: ("propagationPolicy", "str"),
        5: ("dryRun", ("list", "str")),
    },
}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterable[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield number, buf[pos : pos + size]
            pos += size
        elif wire == 1:
            yield number, buf[pos : pos + 8]
            pos += 8
        elif wire == 5:
            yield number, buf[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _scalar(kind: Any, raw: int | bytes) -> Any:
    if kind == "str":
        return bytes(raw).decode() if isinstance(raw, bytes) else str(raw)
    if kind == "bytes":
        return base64.b64encode(bytes(raw) if isinstance(raw, bytes) else b"").decode()
    if kind == "int":
        value = int(raw) if isinstance(raw, int) else 0
        return value - (1 << 64) if value >= 1 << 63 else value
    if kind == "bool":
        return bool(raw)
    if kind == _TIME:
        seconds = 0
        for number, field_value in _fields(bytes(raw) if isinstance(raw, bytes) else b""):
            if number == 1 and isinstance(field_value, int):
                seconds = field_value
        stamp = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(kind, tuple) and kind[0] == "msg":
        return _message(bytes(raw) if isinstance(raw, bytes) else b"", kind[1])
    raise ValueError(f"unsupported protobuf field kind {kind!r}")


def _message(buf: bytes, spec: Mapping[int, tuple[str, Any]]) -> JSON:
    out: JSON = {}
    for number, raw in _fields(buf):
        if number not in spec:
            continue  # fields we do not model (managedFields, status details...) are dropped
        name, kind = spec[number]
        if isinstance(kind, tuple) and kind[0] == "map":
            key = value = None
            for entry_number, entry_raw in _fields(bytes(raw) if isinstance(raw, bytes) else b""):
                if entry_number == 1:
                    key = _scalar("str", entry_raw)
                elif entry_number == 2:
                    value = _scalar(kind[1], entry_raw)
            out.setdefault(name, {})[key or ""] = (
                value if value is not None else ("" if kind[1] in ("str", "bytes") else None)
            )
        elif isinstance(kind, tuple) and kind[0] == "list":
            out.setdefault(name, []).append(_scalar(kind[1], raw))
        else:
            out[name] = _scalar(kind, raw)
    return out


def _drop_empty_strings(meta: JSON) -> JSON:
    # Go's protobuf marshaller writes empty strings; "" namespace would file the object in no namespace.
    return {key: value for key, value in meta.items() if value != ""}


def decode_protobuf(body: bytes) -> JSON:
    """Decode a client-go protobuf body (`k8s\\0` + runtime.Unknown) into the object's JSON form."""
    if not body.startswith(b"k8s\x00"):
        raise ValueError("not a Kubernetes protobuf envelope")
    api_version = kind = ""
    raw = b""
    for number, value in _fields(body[4:]):
        if number == 1 and isinstance(value, bytes):
            for type_number, type_value in _fields(value):
                if type_number == 1:
                    api_version = _scalar("str", type_value)
                elif type_number == 2:
                    kind = _scalar("str", type_value)
        elif number == 2 and isinstance(value, bytes):
            raw = value
    spec = _PROTO_KINDS.get(kind)
    if spec is None:
        raise ValueError(f"protobuf body of kind {kind!r} is not supported by the emulator")
    obj = _message(raw, spec)
    if "metadata" in obj:
        obj["metadata"] = _drop_empty_strings(obj["metadata"])
    if kind != "DeleteOptions" or api_version:
        obj = {"apiVersion": api_version, "kind": kind, **obj}
    return obj
