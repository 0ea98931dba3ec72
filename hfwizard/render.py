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
    y.width = 4096  # a reference or a purpose reads better on one line than folded at 80 columns
    y.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    buf = io.StringIO()
    if header:
        buf.write("".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()))
    y.dump(data, buf)
    return buf.getvalue()


def render_values(profile: InstallProfile, out: Path) -> list[Path]:
    """What the install would do, from its plan, as files in `out`: `values-<release>.yaml` per Helm release
    (the platform's services and the ClickHouse operator), `objects-<step>.yaml` per step that applies objects
    itself (ClickHouse's installations, Jobs, CronJob), and `secrets.yaml`: every Secret it would make, by
    namespace, each key with the reference it is read from (values are never written)."""
    from hfwizard.engine.plan import StepKind, build_plan
    from hfwizard.platform.secretspec import describe

    ensure_dir(out)
    plan = build_plan(profile)
    written: list[Path] = []
    secrets: dict[str, list[dict[str, object]]] = {}
    for step in plan.steps:
        namespace = step.namespace or plan.namespace
        if step.kind is StepKind.RELEASE and step.release is not None:
            rel = step.release
            path = out / f"values-{rel.release}.yaml"
            header = (f"Helm values for release {rel.release} in namespace {namespace}\n"
                      f"chart: {rel.chart} {rel.version} (platform {profile.platform.version})"
                      + (f"\nafter: {', '.join(rel.depends_on)}" if rel.depends_on else ""))
            atomic_write(path, to_yaml(rel.values, header))
            written.append(path)
        elif step.kind is StepKind.OBJECTS and step.objects:
            path = out / f"objects-{step.id.replace('/', '-')}.yaml"
            header = (f"Objects the step {step.id} applies server-side in namespace {namespace}, in order\n"
                      "(secret values are referenced, never inline)")
            atomic_write(path, to_yaml([applied.obj for applied in step.objects], header))
            written.append(path)
        for spec in step.secrets:
            secrets.setdefault(namespace, []).append(describe(spec))
    path = out / "secrets.yaml"
    atomic_write(path, to_yaml({"namespaces": secrets},
                               "Kubernetes Secrets the install creates, by namespace. Values are never written\n"
                               "here: each key names the reference the install reads it from."))
    written.append(path)
    return written
