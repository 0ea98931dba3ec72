"""Upgrade support: what an upgrade changes per release, and the snapshot that lets a failed one go back.

Before an upgrade changes anything, the revision of every release (or that it is not installed yet)
and the content of every Secret hfwizard owns (each Secret the plan writes or a release reads, in
whichever namespace, whatever its labels; or that it does not exist yet) are kept in one Secret in
the namespace (`hfwizard-upgrade-snapshot`): secret values stay in Kubernetes, never on disk, and the
snapshot survives a killed installer, so a resumed upgrade that then fails still goes back to where
the first attempt started. With --rollback-on-failure only what this upgrade changed goes back: the
releases whose revision moved are rolled back, the ones it installed are uninstalled, the Secrets
whose content moved get their old content back and the ones it created are removed. A failed
upgrade without the option uninstalls nothing.
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
    """What the cluster held before the upgrade changed anything. Secrets are keyed `namespace/name`."""

    revisions: dict[str, int]  # release -> revision before the upgrade
    secrets: dict[str, dict[str, Any]]  # "ns/name" -> {"type", "data" (base64, as the API has it), "labels", ...}
    added: list[str] = field(default_factory=list)  # releases of the plan that were not installed
    created: list[str] = field(default_factory=list)  # "ns/name" of the plan's Secrets that did not exist


def plan_secrets(plan: Plan) -> list[tuple[str, str]]:
    """(namespace, name) of every Secret the plan's Secrets steps write, and of every env Secret its
    releases read: what hfwizard owns, whatever labels the Secret carries now (a label anyone can edit
    or strip is no record of ownership; the plan is)."""
    out: dict[tuple[str, str], None] = {}
    for step in plan.steps:
        for spec in step.secrets:
            out[(step.namespace or plan.namespace, spec.name)] = None
        if step.release is not None and step.release.env_secret is not None:
            out[(plan.namespace, step.release.env_secret.name)] = None
    return list(out)


def owned_secrets(kube: Kube, namespace: str) -> dict[str, dict[str, Any]]:
    """Every Secret labelled as hfwizard's in `namespace`, keyed `namespace/name`."""
    listed = items(kube.core.list_namespaced_secret, namespace, label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}")
    return {f"{namespace}/{s['metadata']['name']}": _kept(s) for s in listed}


def _kept(secret: Mapping[str, Any]) -> dict[str, Any]:
    meta = secret.get("metadata") or {}
    return {"type": secret.get("type") or "Opaque", "data": dict(secret.get("data") or {}),
            "labels": dict(meta.get("labels") or {}), "annotations": dict(meta.get("annotations") or {})}


def read_snapshot(kube: Kube, namespace: str) -> Snapshot | None:
    found = kube.read_secret(namespace, SNAPSHOT)
    if found is None:
        return None
    data = {k: json.loads(base64.b64decode(v)) for k, v in (found.get("data") or {}).items()}
    return Snapshot(dict(data.get("revisions") or {}), dict(data.get("secrets") or {}),
                    list(data.get("added") or []), list(data.get("created") or []))


def take_snapshot(kube: Kube, namespace: str, releases: list[str],
                  secrets: list[tuple[str, str]] | None = None) -> tuple[Snapshot, bool]:
    """The snapshot of this upgrade: the one an interrupted attempt already took, else a new one of the
    releases (their revision, or "added" for one not installed yet), every Secret `secrets` names
    (namespace, name: its content, or "created" when it does not exist yet) and every Secret labelled
    as hfwizard's in `namespace`. Returns it and whether it is new."""
    kept = read_snapshot(kube, namespace)
    if kept is not None:
        return kept, False
    snap = Snapshot({}, owned_secrets(kube, namespace))
    for name in releases:
        found = kube.release_record(namespace, name)
        if found is None:
            snap.added.append(name)
        else:
            snap.revisions[name] = found[0]
    for ns, name in secrets or []:
        key = f"{ns}/{name}"
        if key in snap.secrets:
            continue
        secret = kube.read_secret(ns, name)
        if secret is None:
            snap.created.append(key)
        else:
            snap.secrets[key] = _kept(secret)
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SNAPSHOT, "namespace": namespace, "labels": {ROLE_LABEL: "upgrade-snapshot"}},
            "data": {"revisions": _b64(snap.revisions), "secrets": _b64(snap.secrets), "added": _b64(snap.added),
                     "created": _b64(snap.created)}}
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


@dataclass
class RollbackOutcome:
    rolled: list[str] = field(default_factory=list)  # releases back at their snapshot revision
    removed: list[str] = field(default_factory=list)  # releases this upgrade installed, uninstalled again
    failed: list[str] = field(default_factory=list)  # what could not be put back, each naming what


async def roll_back(kube: Kube, helm: HelmBackend, namespace: str, snap: Snapshot, *, timeout_s: float,
                    log: Callable[[str], None]) -> RollbackOutcome:
    """Put the cluster back where the snapshot found it, touching only what this upgrade changed.

    Order matters: the Secrets' old content goes back first, so the pods a release rollback restarts
    read it (their checksum annotation goes back to the old content's); then the releases this upgrade
    installed are uninstalled (newest first) and the ones it moved roll back; the Secrets it created go
    last, once nothing that reads them is left."""
    import asyncio

    out = RollbackOutcome()
    for key, old in snap.secrets.items():
        ns, _, name = key.rpartition("/")
        now = await asyncio.to_thread(kube.read_secret, ns or namespace, name)
        if now is not None and _kept(now)["data"] == old["data"] and _kept(now)["type"] == old["type"]:
            continue
        log(f"Secret {key}: previous content put back")
        try:
            await asyncio.to_thread(_restore_secret, kube, ns or namespace, name, old, now)
        except Exception as exc:
            out.failed.append(f"Secret {key}: {type(exc).__name__}")
    for name in reversed(snap.added):
        await _remove_added(kube, helm, namespace, name, timeout_s, log, out)
    for name, revision in snap.revisions.items():
        found = await asyncio.to_thread(kube.release_record, namespace, name)
        if found is None or (found[0] == revision and found[1] == "deployed"):
            continue
        log(f"rolling {name} back to revision {revision} (it was at {found[0]}, {found[1]})")
        try:
            await helm.rollback(name, namespace, revision, wait=True, timeout_s=timeout_s, on_log=log)
            out.rolled.append(name)
        except Exception as exc:
            out.failed.append(f"release {name}: {getattr(exc, 'message', exc)}")
    for key in snap.created:
        ns, _, name = key.rpartition("/")
        try:
            await asyncio.to_thread(kube.core.delete_namespaced_secret, name, ns or namespace)
            log(f"Secret {key}: removed (this upgrade created it)")
        except Exception as exc:
            if not not_found(exc):
                out.failed.append(f"Secret {key}: {type(exc).__name__}")
    return out


async def _remove_added(kube: Kube, helm: HelmBackend, namespace: str, name: str, timeout_s: float,
                        log: Callable[[str], None], out: RollbackOutcome) -> None:
    import asyncio

    from hfwizard.engine.helm import ReleaseNotFound

    found = await asyncio.to_thread(kube.release_record, namespace, name)
    if found is None:
        return
    log(f"uninstalling {name}: this upgrade installed it (revision {found[0]}, {found[1]})")
    try:
        await helm.uninstall(name, namespace, wait=True, timeout_s=timeout_s, on_log=log)
        out.removed.append(name)
    except ReleaseNotFound:
        out.removed.append(name)
    except Exception as exc:
        out.failed.append(f"release {name}: {getattr(exc, 'message', exc)}")


def _restore_secret(kube: Kube, namespace: str, name: str, old: Mapping[str, Any],
                    now: Mapping[str, Any] | None) -> None:
    """The Secret exactly as snapshotted: type, data, labels and annotations (not hfwizard's label added)."""
    body: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Secret", "type": str(old["type"]), "data": dict(old["data"]),
        "metadata": {"name": name, "namespace": namespace, "labels": dict(old.get("labels") or {}),
                     "annotations": dict(old.get("annotations") or {})}}
    if now is None:
        kube.core.create_namespaced_secret(namespace, body)
        return
    if (now.get("type") or "Opaque") != body["type"]:
        # A Secret's type cannot change in place: the one the upgrade left goes, the old one comes back.
        kube.core.delete_namespaced_secret(name, namespace)
        kube.core.create_namespaced_secret(namespace, body)
        return
    body["metadata"]["resourceVersion"] = (now.get("metadata") or {}).get("resourceVersion")
    kube.core.replace_namespaced_secret(name, namespace, body)
