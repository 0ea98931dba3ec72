"""The installs kept under the state root: one InstallDir each, with its profile, journal and logs."""

from __future__ import annotations

from pathlib import Path

from hfwizard.errors import BadInput
from hfwizard.store.install_dir import InstallDir, list_install_dirs

# The names front ends have used for an install found on disk and its files; the store's InstallDir
# owns them (`InstallDir.profile_path`, `.journal_path`).
Install = InstallDir
PROFILE_FILE = InstallDir(Path()).profile_path.name
JOURNAL_FILE = InstallDir(Path()).journal_path.name


def list_installs(root: Path) -> list[InstallDir]:
    return list_install_dirs(root)


def find_install(root: Path, name: str | None) -> InstallDir:
    found = list_installs(root)
    if name is not None:
        for inst in found:
            if inst.name == name:
                return inst
        raise BadInput(f"no install named {name!r} under {root}",
                       remedy="`hfwizard status` lists the installs kept there")
    if not found:
        raise BadInput(f"no saved install under {root}",
                       remedy="start one with `hfwizard` (the wizard) or `hfwizard install --profile FILE`; "
                              "if it was made elsewhere, add --state-dir DIR (or set HFWIZARD_STATE_DIR)")
    if len(found) > 1:
        raise BadInput(f"{len(found)} installs under {root}: " + ", ".join(i.name for i in found),
                       remedy="choose one with --install NAME")
    return found[0]
