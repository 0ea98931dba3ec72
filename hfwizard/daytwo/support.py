"""`hfwizard support-bundle NAME` in one call: masker, standard collectors, bundle under the install folder."""

from __future__ import annotations

import asyncio
import datetime
import json
import platform
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from hfwizard import __version__
from hfwizard.daytwo.bundle import DEFAULT_TIMEOUT, BundleReport, Collector, describe_error, write_support_bundle
from hfwizard.daytwo.collectors import (
    helm_history_collector,
    helm_records_collector,
    install_dir_collector,
    json_collector,
    kubernetes_collectors,
)
from hfwizard.daytwo.redact import Redactor
from hfwizard.daytwo.sources import cluster_secret_values, profile_secret_values

BUNDLE_DIR = "support"


def default_bundle_path(install_dir: Path, now: datetime.datetime | None = None) -> Path:
    """`<install dir>/support/hfwizard-support-<install>-<UTC time>.tar.gz`."""
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return install_dir / BUNDLE_DIR / f"hfwizard-support-{install_dir.name}-{stamp}.tar.gz"


def build_redactor(profile_document: Mapping[str, Any] | None, *, base_dir: Path | None = None,
                   api_client: Any = None, namespace: str | None = None,
                   extra_values: Iterable[str] = ()) -> tuple[Redactor, list[str]]:
    """A masker knowing every secret value the install has: the profile's references resolved here, the
    install's Secrets in the cluster (generated passwords, `k8s:` keys) and `extra_values`. Returns it
    with what could not be read (lines naming references or the cluster, never values)."""
    values = set(extra_values)
    problems: list[str] = []
    k8s_refs: list[str] = []
    if profile_document is not None:
        found = profile_secret_values(profile_document, base_dir)
        values |= found.values
        k8s_refs = found.k8s_refs
        problems.extend(found.unresolved)
    if api_client is not None and namespace:
        try:
            values |= cluster_secret_values(api_client, namespace, k8s_refs=k8s_refs)
        except Exception as exc:
            problems.append(f"the install's Secrets in {namespace} could not be read: {describe_error(exc)}")
    return Redactor(values), problems


def releases_from_journal(journal_path: Path) -> list[str]:
    """The Helm releases the journal names, in the order it names them."""
    found: dict[str, None] = {}
    if not journal_path.exists():
        return []
    for raw in journal_path.read_bytes().splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue  # a torn last line
        if isinstance(record, dict) and isinstance(record.get("release"), str):
            found.setdefault(record["release"])
    return list(found)


def history_from_backend(backend: Any, namespace: str) -> Callable[[str], Any]:
    """A history callable over a Helm backend whose `history(release, namespace)` is a coroutine
    (hfwizard's HelmBackend); collectors run in threads of their own, so each gets its own loop."""
    return lambda release: asyncio.run(backend.history(release, namespace))


def support_bundle(install_dir: Path, *, profile_document: Mapping[str, Any] | None = None,
                   api_client: Any = None, namespace: str | None = None, cluster_error: str = "",
                   releases: Iterable[str] = (), history: Callable[[str], Any] | None = None,
                   preflight: Callable[[], Any] | None = None, out_path: Path | None = None,
                   timeout_per_collector: float = DEFAULT_TIMEOUT, reason: str = "",
                   now: datetime.datetime | None = None) -> BundleReport:
    """Write the install's support bundle (default path: `default_bundle_path`).

    `api_client`/`namespace` give the cluster collectors; without a client, `cluster_error` says why
    and the bundle lists the cluster as not collected. `reason` (e.g. "install failed") goes into
    collectors.json. Raises only when the archive cannot be written."""
    redactor, masking_problems = build_redactor(profile_document, base_dir=install_dir, api_client=api_client,
                                                namespace=namespace)
    collectors: list[Collector] = [install_dir_collector(install_dir)]
    if preflight is not None:
        collectors.append(json_collector("preflight", "preflight.json", preflight))
    wanted = list(dict.fromkeys([*releases, *releases_from_journal(install_dir / "journal.jsonl")]))
    if history is not None and wanted:
        collectors.append(helm_history_collector(wanted, history))
    if api_client is not None and namespace:
        collectors.extend([helm_records_collector(api_client, namespace),
                           *kubernetes_collectors(api_client, namespace)])
    else:
        why = cluster_error or "no connection to the cluster was given"
        collectors.append(Collector("kubernetes", lambda: _unreachable(why)))
    info = {"install": install_dir.name, "reason": reason, "hfwizard": __version__,
            "python": sys.version.split()[0], "platform": platform.platform(), "namespace": namespace,
            "masking_problems": masking_problems}
    return write_support_bundle(out_path or default_bundle_path(install_dir, now), collectors, redactor,
                                timeout_per_collector, info=info)


def support_bundle_after_failure(install_dir: Path, **kwargs: Any) -> tuple[Path | None, str]:
    """`support_bundle` for a failed install, upgrade or uninstall: never raises, so the failure it
    follows stays the one reported. Returns the path (or None) and a line to print."""
    try:
        report = support_bundle(install_dir, **kwargs)
    except Exception as exc:
        return None, f"no support bundle could be written: {describe_error(exc)}"
    missing = [r.name for r in report.failed]
    note = f" ({', '.join(missing)} not collected)" if missing else ""
    return report.path, f"support bundle: {report.path}{note}"


def _unreachable(why: str) -> dict[str, bytes]:
    raise ConnectionError(why)
