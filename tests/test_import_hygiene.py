"""One direction of dependency: the core never imports a front end (Textual, questionary, the screens).

Only `hfwizard.plain` owns questionary, and only `hfwizard.cli`'s TUI branch reaches the screens, lazily.
Each check runs in a fresh interpreter so nothing imported by other tests hides a violation.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import hfwizard

OWNS_A_FRONT_END = {"hfwizard.plain", "hfwizard.__main__"}


def core_modules() -> list[str]:
    found = [m.name for m in pkgutil.walk_packages(hfwizard.__path__, "hfwizard.")]
    return sorted(m for m in found if m not in OWNS_A_FRONT_END and not m.startswith("hfwizard.screens"))


def test_core_modules_import_no_front_end() -> None:
    modules = core_modules()
    assert "hfwizard.engine.engine" in modules and "hfwizard.preflight" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {{'textual', 'questionary', 'prompt_toolkit'}}"
        " or m.startswith('hfwizard.screens')))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", f"core modules pulled in a front end: {r.stdout}"
