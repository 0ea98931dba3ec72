"""Upgrade support: what an upgrade changes per release, and the snapshot that lets a failed one go back.

Before an upgrade changes anything, the revision of every release and the content of every Secret
hfwizard owns are kept in one Secret in the namespace (`hfwizard-upgrade-snapshot`): secret values
stay in Kubernetes, never on disk, and the snapshot survives a killed installer, so a resumed
upgrade that then fails still goes back to where the first attempt started. With
--rollback-on-failure only the releases whose revision moved are rolled back, and the owned Secrets
whose content moved get their old content back; nothing is ever uninstalled.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hfwizard.engine.helm import HelmBackend
from hfwizard.engine.kube import Kube, items, not_found
from hfwizard.engine.plan import Plan, StepKind
from hfwizard.platform.secretspec import MANAGED_BY, MANAGED_BY_LABEL

SNAPSHOT = "hfwizard-upgrade-snapshot"
ROLE_LABEL = "hfwizard.io/role"  # not the managed-by label: a snapshot must never snapshot itself
SECRET_WORDS = ("password", "secret", "token", "key", "credential", "jwt", "cert", "pem")


# ---- the plan's changes --------------------------------------------------------------------------


@dataclass
class ReleaseChange:
    release: str
    chart_from: str  # "" for a release this upgrade adds
    chart_to: str
    image_from: list[str]
    image_to: list[str]
    values: list[str] = field(default_factory=list)  # "path: old -> new", secrets only as "changed"

    @property
    def changed(self) -> bool:
        return self.chart_from != self.chart_to or self.image_from != self.image_to or bool(self.values)

    def lines(self) -> list[str]:
        head = (f"{self.release}: new release, chart {self.chart_to}" if not self.chart_from else
                f"{self.release}: chart {self.chart_from}" + (f" -> {self.chart_to}" if self.chart_to != self.chart_from
                                                             else " (unchanged)"))
        out = [head]
        if self.image_from != self.image_to:
            out.append(f"  image tag {', '.join(self.image_from) or '-'} -> {', '.join(self.image_to) or '-'}")
        out += [f"  {line}" for line in self.values]
        return out


def current_release(kube: Kube, namespace: str, release: str) -> dict[str, Any] | None:
    """The latest revision of `release` as Helm recorded it (chart, config values), or None."""
    from hfwizard.engine.workloads import decode_record

    records = items(kube.core.list_namespaced_secret, namespace, label_selector=f"owner=helm,name={release}")
    versioned = [(int(v), r) for r in records
                 if (v := str((r["metadata"].get("labels") or {}).get("version", ""))).isdigit()]
    if not versioned:
        return None
    entry = (max(versioned, key=lambda p: p[0])[1].get("data") or {}).get("release")
    return decode_record(entry) if entry else None


def release_changes(kube: Kube, plan: Plan, chart_version: Callable[[Any], str]) -> list[ReleaseChange]:
    """Per release step of `plan`: chart version, image tags and Helm values, the cluster's against the plan's.
    The env Secret's checksum annotation the engine adds is left out: a changed env Secret shows as its keys."""
    from hfwizard.engine.steps.release import ENV_CHECKSUM

    out = []
    for step in plan.steps:
        if step.kind is not StepKind.RELEASE or step.release is None:
            continue
        spec = step.release
        now = current_release(kube, plan.namespace, spec.release)
        meta = ((now or {}).get("chart") or {}).get("metadata") or {}
        old_values = _without_annotation(dict((now or {}).get("config") or {}), ENV_CHECKSUM, spec.values)
        chart_from = f"{meta.get('name')}-{meta.get('version')}" if now else ""
        out.append(ReleaseChange(spec.release, chart_from, chart_version(spec), image_tags(old_values),
                                 image_tags(spec.values), values_changes(old_values, dict(spec.values)) if now else []))
    return out


def _without_annotation(values: dict[str, Any], key: str, planned: Mapping[str, Any]) -> dict[str, Any]:
    """`values` without pod annotation `key`; an emptied podAnnotations stays only where the plan has one."""
    annotations = values.get("podAnnotations")
    if not isinstance(annotations, Mapping) or key not in annotations:
        return values
    rest = {k: v for k, v in annotations.items() if k != key}
    out = {k: v for k, v in values.items() if k != "podAnnotations"}
    return {**out, "podAnnotations": rest} if rest or "podAnnotations" in planned else out


def image_tags(values: Mapping[str, Any]) -> list[str]:
    """Every `image.tag` (or `imageTag`) set anywhere in a release's values."""
    found: list[str] = []
    for path, value in flatten(values).items():
        parts = path.split(".")
        is_tag = (parts[-1] == "tag" and len(parts) > 1 and "image" in parts[-2].lower()) or parts[-1] == "imageTag"
        if is_tag and value not in (None, "") and str(value) not in found:
            found.append(str(value))
    return found


def values_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """`path: old -> new` per changed value; a path that names a secret shows only "changed"."""
    a, b = flatten(old), flatten(new)
    out = []
    for path in sorted(set(a) | set(b)):
        if a.get(path, _MISSING) == b.get(path, _MISSING):
            continue
        if any(word in path.lower() for word in SECRET_WORDS):
            out.append(f"{path}: changed")
        elif path not in a:
            out.append(f"{path}: (unset) -> {_show(b[path])}")
        elif path not in b:
            out.append(f"{path}: {_show(a[path])} -> (unset)")
        else:
            out.append(f"{path}: {_show(a[path])} -> {_show(b[path])}")
    return out


_MISSING = object()


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data} if prefix else {}


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def secret_changes(kube: Kube, namespace: str, planned: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Per Secret the plan writes (name -> plain-text data): which keys change. Never a value."""
    out = []
    for name, data in planned.items():
        found = kube.read_secret(namespace, name)
        old = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in ((found or {}).get("data") or {}).items()}
        if found is None:
            out.append(f"Secret {name}: new ({', '.join(sorted(data))})")
            continue
        changed = sorted(k for k in data if old.get(k) != data[k])
        if changed:
            out.append(f"Secret {name}: {', '.join(changed)} changed")
    return out


# ---- the snapshot and the rollback ---------------------------------------------------------------


@dataclass
class Snapshot:
    revisions: dict[str, int]  # release -> revision before the upgrade
    secrets: dict[str, dict[str, Any]]  # Secret name -> {"type", "data" (base64, as the API has it)}


def owned_secrets(kube: Kube, namespace: str) -> dict[str, dict[str, Any]]:
    listed = items(kube.core.list_namespaced_secret, namespace, label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}")
    return {s["metadata"]["name"]: {"type": s.get("type") or "Opaque", "data": dict(s.get("data") or {})}
            for s in listed}


def read_snapshot(kube: Kube, namespace: str) -> Snapshot | None:
    found = kube.read_secret(namespace, SNAPSHOT)
    if found is None:
        return None
    data = {k: json.loads(base64.b64decode(v)) for k, v in (found.get("data") or {}).items()}
    return Snapshot(dict(data.get("revisions") or {}), dict(data.get("secrets") or {}))


def take_snapshot(kube: Kube, namespace: str, releases: list[str]) -> tuple[Snapshot, bool]:
    """The snapshot of this upgrade: the one an interrupted attempt already took, else a new one.
    Returns it and whether it is new."""
    kept = read_snapshot(kube, namespace)
    if kept is not None:
        return kept, False
    revisions = {}
    for name in releases:
        found = kube.release_record(namespace, name)
        if found is not None:
            revisions[name] = found[0]
    snap = Snapshot(revisions, owned_secrets(kube, namespace))
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SNAPSHOT, "namespace": namespace, "labels": {ROLE_LABEL: "upgrade-snapshot"}},
            "data": {"revisions": _b64(snap.revisions), "secrets": _b64(snap.secrets)}}
    kube.core.create_namespaced_secret(namespace, body)
    return snap, True


def drop_snapshot(kube: Kube, namespace: str) -> None:
    try:
        kube.core.delete_namespaced_secret(SNAPSHOT, namespace)
    except Exception as exc:
        if not not_found(exc):
            raise


def _b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value, sort_keys=True).encode()).decode()


async def roll_back(kube: Kube, helm: HelmBackend, namespace: str, snap: Snapshot, *, timeout_s: float,
                    log: Callable[[str], None]) -> tuple[list[str], list[str]]:
    """Releases whose revision moved go back to their snapshot revision; owned Secrets whose content
    moved get it back. Returns (releases rolled back, what failed)."""
    import asyncio

    rolled, failed = [], []
    for name, revision in snap.revisions.items():
        found = await asyncio.to_thread(kube.release_record, namespace, name)
        if found is None or (found[0] == revision and found[1] == "deployed"):
            continue
        log(f"rolling {name} back to revision {revision} (it was at {found[0]}, {found[1]})")
        try:
            await helm.rollback(name, namespace, revision, wait=True, timeout_s=timeout_s, on_log=log)
            rolled.append(name)
        except Exception as exc:
            failed.append(f"release {name}: {getattr(exc, 'message', exc)}")
    now = await asyncio.to_thread(owned_secrets, kube, namespace)
    for name, old in snap.secrets.items():
        if now.get(name, {}).get("data") == old["data"]:
            continue
        log(f"Secret {name}: previous content put back")
        try:
            await asyncio.to_thread(_restore_secret, kube, namespace, name, old)
        except Exception as exc:
            failed.append(f"Secret {name}: {type(exc).__name__}")
    return rolled, failed


def _restore_secret(kube: Kube, namespace: str, name: str, old: Mapping[str, Any]) -> None:
    existing = kube.read_secret(namespace, name)
    plain = {k: base64.b64decode(v).decode("utf-8") for k, v in old["data"].items()}
    kube.write_secret(namespace, name, str(old["type"]), plain, existing)
