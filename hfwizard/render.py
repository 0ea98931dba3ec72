"""`hfwizard render`: the values each release would get and the Secrets the install would create."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from hfwizard import values
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
    ensure_dir(out)
    written: list[Path] = []
    for rel in values.releases(profile):
        chart = rel.chart_ref + (f" (repo {rel.chart_repo})" if rel.chart_repo else "") + \
            (f" version {rel.chart_version}" if rel.chart_version else "")
        path = out / f"values-{rel.release}.yaml"
        atomic_write(path, to_yaml(rel.values, f"Helm values for release {rel.release} "
                                               f"in namespace {profile.target.namespace}\nchart: {chart}"))
        written.append(path)
    listing = [{"name": s.name, "type": s.type, "purpose": s.purpose,
                "keys": {k: f"from {ref}" for k, ref in s.entries.items()}
                | {k: "generated at install, kept on upgrade" for k in s.generated}}
               for s in values.secrets(profile)]
    path = out / "secrets.yaml"
    atomic_write(path, to_yaml({"namespace": profile.target.namespace, "secrets": listing},
                               "Kubernetes Secrets the install creates. Values are never written here:\n"
                               "each key names the reference the install reads it from."))
    written.append(path)
    return written
