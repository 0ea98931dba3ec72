"""`hfwizard render`: the values each release would get and the Secrets the install would create."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from hfwizard.profile import InstallProfile
from hfwizard.state import atomic_write, ensure_dir


def to_yaml(data: Any, header: str = "") -> str:
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    buf = io.StringIO()
    if header:
        buf.write("".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()))
    y.dump(data, buf)
    return buf.getvalue()


def render_values(profile: InstallProfile, out: Path) -> list[Path]:
    """Write `values-<release>.yaml` per release and `secrets.yaml` (references only) into `out`."""
    from hfwizard.engine.plan import values_profile
    from hfwizard.platform.catalog import load_catalog
    from hfwizard.platform.secretspec import describe
    from hfwizard.platform.values import all_secrets, service_releases

    ensure_dir(out)
    catalog = load_catalog(profile.platform.version)
    vp = values_profile(profile)
    written: list[Path] = []
    for rel in service_releases(vp, catalog):
        path = out / f"values-{rel.release}.yaml"
        header = (f"Helm values for release {rel.release} in namespace {profile.target.namespace}\n"
                  f"chart: {rel.chart} {rel.version} (platform {catalog.platform})"
                  + (f"\nafter: {', '.join(rel.depends_on)}" if rel.depends_on else ""))
        atomic_write(path, to_yaml(rel.values, header))
        written.append(path)
    listing = [describe(s) for s in all_secrets(vp, catalog)]
    path = out / "secrets.yaml"
    atomic_write(path, to_yaml({"namespace": profile.target.namespace, "secrets": listing},
                               "Kubernetes Secrets the install creates. Values are never written here:\n"
                               "each key names the reference the install reads it from."))
    written.append(path)
    return written
