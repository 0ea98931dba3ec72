"""The CLI as an operator meets it: real processes, exit codes, no tracebacks, no leaked secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def hfw(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "hfwizard", *args], capture_output=True, text=True,
                          env=full, cwd=cwd or ROOT, timeout=60)


def test_help_lists_every_command_with_examples() -> None:
    r = hfw("--help")
    assert r.returncode == 0
    for cmd in ("install", "resume", "export", "preflight", "render", "status", "schema", "sandbox"):
        assert cmd in r.stdout
    assert "Examples:" in r.stdout and "Exit codes" in r.stdout


def test_help_does_not_import_heavy_libraries() -> None:
    code = ("import sys; from hfwizard.frontends.cli import run; run(['--help']); "
            "heavy = [m for m in ('boto3', 'kubernetes', 'textual', 'google.auth', 'azure.identity', 'helm_sdkpy') "
            "if m in sys.modules]; print('HEAVY', heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in r.stdout


@pytest.mark.parametrize("args", [["bogus"], ["install"], ["render", "--profile", "profiles/aws.yaml"],
                                  ["render", "--profile", "profiles/aws.yaml", "--out", "x", "--nope"]])
def test_usage_errors_exit_2_without_traceback(args: list[str]) -> None:
    r = hfw(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    assert "Error" in r.stderr


def test_missing_profile_exits_2_naming_it(tmp_path: Path) -> None:
    r = hfw("render", "--profile", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "nope.yaml does not exist" in r.stderr


def test_invalid_profile_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: hfwizard/v1\nkind: InstallProfile\nsizing:\n  nodes:\n    cores: 4\n")
    r = hfw("render", "--profile", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "sizing.nodes.cores" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists(), "nothing is written for a bad profile"


def test_schema_is_json_schema_of_the_profile(tmp_path: Path) -> None:
    r = hfw("schema")
    schema = json.loads(r.stdout)
    assert r.returncode == 0
    assert {"apiVersion", "target", "sizing", "postgres", "redis", "clerk"} <= set(schema["properties"])
    out = tmp_path / "s.json"
    assert hfw("schema", "--out", str(out)).returncode == 0
    assert json.loads(out.read_text()) == schema


def test_export_normalises_and_migrates_a_profile(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text("apiVersion: hfwizard/v1alpha1\nkind: InstallProfile\ncluster: {cloud: existing, name: c1}\n")
    out = tmp_path / "new.yaml"
    r = hfw("export", "--profile", str(old), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "migrated" in r.stderr
    assert "apiVersion: hfwizard/v1\n" in out.read_text() and "cluster: c1" in out.read_text()
    assert out.stat().st_mode & 0o777 == 0o600


def test_export_without_a_saved_install_says_what_to_do(tmp_path: Path) -> None:
    r = hfw("export", "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "no saved install" in r.stderr


def test_render_json_lines(tmp_path: Path) -> None:
    """Every Helm release of the plan (the ClickHouse operator too), every step applying objects itself, and
    every Secret by namespace (clickhouse-secrets too)."""
    r = hfw("render", "--profile", "profiles/aws.yaml", "--out", str(tmp_path / "v"), "--json")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events[-1] == {"event": "done", "status": "ok"}
    from hfwizard.engine.plan import StepKind, build_plan
    from hfwizard.profile_io import load_profile

    plan = build_plan(load_profile(Path("profiles/aws.yaml")).profile)
    releases = {f"values-{s.release.release}.yaml" for s in plan.steps if s.release is not None}
    objects = {f"objects-{s.id.replace('/', '-')}.yaml" for s in plan.steps if s.kind is StepKind.OBJECTS}
    assert "values-clickhouse-operator.yaml" in releases and "objects-clickhouse-server.yaml" in objects
    assert {Path(e["path"]).name for e in events[:-1]} == {"secrets.yaml", *releases, *objects}
    assert (tmp_path / "v").stat().st_mode & 0o777 == 0o700
    secrets = yaml.safe_load((tmp_path / "v" / "secrets.yaml").read_text())["namespaces"]
    assert {"clickhouse-secrets", "highflame-platform-secrets"} <= {s["name"] for s in secrets[plan.namespace]}


def test_resume_with_nothing_to_resume_names_what_works(tmp_path: Path) -> None:
    r = hfw("resume", "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "no saved install" in r.stderr
    assert "hfwizard install --profile FILE" in r.stderr and "give --profile" not in r.stderr
