"""One direction of dependency: the core never imports a front end (Textual, questionary, Typer, Rich, the
screens); only hfwizard.frontends and the screens do.

Two proofs: every core module imported in a fresh interpreter pulls in no front end (so nothing imported
by other tests hides a violation), and the import contracts in pyproject.toml, checked statically by
import-linter (imports inside functions count), hold, and fail on a core module that imports Rich
inside a function.
"""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hfwizard

ROOT = Path(__file__).resolve().parent.parent
UI = ("textual", "questionary", "prompt_toolkit", "typer", "rich")


def core_modules() -> list[str]:
    found = [m.name for m in pkgutil.walk_packages(hfwizard.__path__, "hfwizard.")]
    return sorted(m for m in found if m != "hfwizard.__main__"
                  and not m.startswith(("hfwizard.screens", "hfwizard.frontends")))


def test_core_modules_import_no_front_end() -> None:
    modules = core_modules()
    assert "hfwizard.engine.engine" in modules and "hfwizard.operations" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {set(UI)!r}"
        " or m.startswith(('hfwizard.screens', 'hfwizard.frontends'))))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", f"core modules pulled in a front end: {r.stdout}"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    linter = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(linter), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PATH": str(linter.parent), "PYTHONPATH": str(root)})


def test_import_contracts_hold() -> None:
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 kept, 0 broken" in r.stdout


@pytest.mark.timeout(300)
def test_import_contracts_catch_rich_imported_inside_a_core_function(tmp_path: Path) -> None:
    # A copy of the tree with one bad core module: Rich imported only when a function runs, which a
    # run-time check that merely imports the module never sees.
    shutil.copytree(ROOT / "hfwizard", tmp_path / "hfwizard", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "screens", tmp_path / "screens", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "hfwizard" / "sneaky.py").write_text(
        '"""A core module that draws with Rich: forbidden."""\n\n\n'
        "def show(text: str) -> None:\n"
        "    from rich.console import Console\n\n"
        "    Console().print(text)\n")
    r = _lint(tmp_path)
    assert r.returncode != 0, r.stdout
    assert "hfwizard.sneaky -> rich" in r.stdout and "1 broken" in r.stdout, r.stdout
