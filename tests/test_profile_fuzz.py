"""Thousands of malformed profiles through the real CLI entry point: each exits 2 naming what is wrong.

The in-process runs call `hfwizard.frontends.cli.run` (the function `main` wraps) so hypothesis can
afford thousands of cases; a sample also runs as real processes to prove nothing differs there.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfwizard.frontends.cli import run
from hfwizard.profile_io import load_profile, profile_data

ROOT = Path(__file__).resolve().parent.parent
BASE = profile_data(load_profile(ROOT / "profiles" / "aws.yaml").profile)
WORK = Path(tempfile.mkdtemp(prefix="hfw-fuzz-"))
FUZZ = settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BOOL_WORDS = {"yes", "no", "on", "off", "true", "false", "1", "0", "t", "f", "y", "n"}
junk_text = st.text(min_size=1, max_size=12).filter(lambda s: s.strip().lower() not in BOOL_WORDS)
containers = st.one_of(st.lists(st.integers(), min_size=1, max_size=3),
                       st.dictionaries(st.text(min_size=1, max_size=4), st.integers(), min_size=1, max_size=2))


def not_int_text() -> st.SearchStrategy[str]:
    return junk_text.filter(lambda s: not s.strip().lstrip("+-").replace("_", "").isdigit())


def out_of(lo: int, hi: int) -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1), not_int_text(), containers)


# (YAML path, strategy of values that path must refuse)
FIELDS: list[tuple[tuple[str, ...], st.SearchStrategy[Any]]] = [
    (("sizing", "nodes", "count"), out_of(6, 1000)),
    (("sizing", "nodes", "cores"), out_of(8, 16)),
    (("sizing", "nodes", "memoryGiB"), out_of(16, 32)),
    (("sizing", "postgres", "vcpu"), out_of(4, 128)),
    (("sizing", "redis", "memoryGiBPerNode"),
     st.one_of(st.floats(max_value=3.99, allow_nan=False, allow_infinity=False), not_int_text())),
    (("modules", "guardrails", "replicas"), out_of(1, 100)),
    (("modules", "policy", "enabled"), st.one_of(junk_text, containers)),
    (("postgres", "port"), out_of(1, 65535)),
    (("postgres", "sslmode"), junk_text.filter(lambda s: s not in {"disable", "allow", "prefer", "require",
                                                                    "verify-ca", "verify-full"})),
    (("postgres", "password"), st.one_of(junk_text.filter(lambda s: ":" not in s), st.integers(), containers)),
    (("redis", "endpoints"), st.one_of(junk_text, st.lists(junk_text.filter(lambda s: ":" not in s), min_size=1))),
    (("target", "namespace"), st.one_of(st.from_regex(r"[A-Z _!]{1,8}", fullmatch=True), st.integers(), containers)),
    (("target", "cloud"), junk_text.filter(lambda s: s not in {"aws", "gcp", "azure", "existing", "sandbox"})),
    (("clerk", "publishableKey"), st.one_of(junk_text, st.integers())),
    (("clerk", "secretKey"), st.one_of(junk_text.filter(lambda s: ":" not in s), st.integers())),
    (("ingress", "domain"), st.one_of(st.from_regex(r"[ _!@]{1,6}", fullmatch=True), containers)),
    (("images", "pullSecret"), st.one_of(junk_text.filter(lambda s: ":" not in s), containers)),
    (("install", "stallSeconds"), out_of(5, 7200)),
]


def dump(data: Any) -> str:
    # JSON is YAML too, and unlike a YAML dumper it never writes a scalar it cannot read back.
    return json.dumps(data)


def run_cli(raw: bytes) -> tuple[int, str]:
    path = WORK / "profile.yaml"
    path.write_bytes(raw)
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = run(["render", "--profile", str(path), "--out", str(WORK / "out")])
    return code, err.getvalue() + out.getvalue()


def set_path(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    d = copy.deepcopy(data)
    node = d
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return d


@FUZZ
@given(case=st.sampled_from(FIELDS).flatmap(lambda f: st.tuples(st.just(f[0]), f[1])))
def test_wrong_values_exit_2_naming_the_field(case: tuple[tuple[str, ...], Any]) -> None:
    path, value = case
    code, text = run_cli(dump(set_path(BASE, path, value)).encode())
    assert code == 2, text
    assert ".".join(path) in text, text
    assert "Traceback" not in text


@FUZZ
@given(section=st.sampled_from(["target", "sizing", "postgres", "redis", "clerk", "ingress", "modules", ""]),
       key=st.from_regex(r"[a-z][A-Za-z]{2,10}", fullmatch=True), value=st.one_of(st.integers(), junk_text))
def test_unknown_keys_exit_2_naming_the_key(section: str, key: str, value: Any) -> None:
    target = BASE.get(section, {}) if section else BASE
    if key in target:
        return
    data = set_path(BASE, (section, key) if section else (key,), value)
    code, text = run_cli(dump(data).encode())
    assert code == 2, text
    assert f"{section + '.' if section else ''}{key}: unknown key" in text
    assert "Traceback" not in text


@FUZZ
@given(raw=st.one_of(st.binary(min_size=1, max_size=300),
                     st.text(min_size=1, max_size=300).map(str.encode),
                     st.text(alphabet="{}[]:-,'\"\n #&*!|>%@`", min_size=1, max_size=80).map(str.encode)))
def test_junk_and_broken_yaml_exit_2_without_traceback(raw: bytes) -> None:
    code, text = run_cli(raw)
    assert code == 2, text
    assert "Traceback" not in text and "internal error" not in text
    assert text.strip()


@pytest.mark.parametrize("raw", [b"\x00\x01\x02binary", b"apiVersion: [", b"apiVersion: hfwizard/v1\nkind: X\n",
                                 dump(set_path(BASE, ("sizing", "nodes", "cores"), 4)).encode()])
def test_real_processes_exit_2_too(raw: bytes, tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_bytes(raw)
    r = subprocess.run([sys.executable, "-m", "hfwizard", "render", "--profile", str(p), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, env=dict(os.environ), cwd=ROOT, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.strip()
