"""The installs kept under the state root: one folder each, with its profile, journal and logs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfwizard.errors import BadInput

if TYPE_CHECKING:
    from hfwizard.profile_io import LoadedProfile

PROFILE_FILE = "profile.yaml"
JOURNAL_FILE = "journal.jsonl"


@dataclass(frozen=True)
class Install:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def profile_path(self) -> Path:
        return self.path / PROFILE_FILE

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL_FILE

    def load_profile(self) -> LoadedProfile:
        if not self.profile_path.exists():
            raise BadInput(f"install {self.name!r} has no saved profile ({self.profile_path})")
        # Imported here: building the profile model costs a quarter second, and listing installs (the
        # wizard's first screen, `hfwizard status`) does not need it.
        from hfwizard.profile_io import load_profile

        return load_profile(self.profile_path)

    def state(self) -> str:
        """new, running/interrupted, failed or done, from the journal's last install-level record."""
        if not self.journal_path.exists():
            return "new"
        state = "new"
        with self.journal_path.open("rb") as fh:
            for raw in fh:
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue  # a torn last line from a killed process
                kind = rec.get("event") if isinstance(rec, dict) else None
                if kind == "install_started":
                    state = "interrupted"
                elif kind == "install_finished":
                    status = rec.get("status")
                    state = {"ok": "done", "interrupted": "interrupted"}.get(str(status), "failed")
        return state

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state(), "path": str(self.path)}


def list_installs(root: Path) -> list[Install]:
    base = root / "installs"
    if not base.is_dir():
        return []
    return sorted((Install(p) for p in base.iterdir() if p.is_dir()), key=lambda i: i.name)


def find_install(root: Path, name: str | None) -> Install:
    found = list_installs(root)
    if name is not None:
        for inst in found:
            if inst.name == name:
                return inst
        raise BadInput(f"no install named {name!r} under {root}",
                       remedy="`hfwizard status` lists the installs kept there")
    if not found:
        raise BadInput(f"no saved install under {root}",
                       remedy="give --profile FILE, or --state-dir where the install was made")
    if len(found) > 1:
        raise BadInput(f"{len(found)} installs under {root}: " + ", ".join(i.name for i in found),
                       remedy="choose one with --install NAME")
    return found[0]
