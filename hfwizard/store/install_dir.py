"""InstallDir: the folder of one install and every file in it (profile, draft, journal, logs, lock, cache)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfwizard.errors import BadInput
from hfwizard.state import ensure_dir
from hfwizard.store.journal import JournalState, read_state
from hfwizard.store.status import InstallStatus

if TYPE_CHECKING:
    from hfwizard.profile_io import LoadedProfile

INSTALLS = "installs"  # <state root>/installs/<name>/


@dataclass(frozen=True)
class InstallDir:
    """`<state root>/installs/<name>`: nothing outside this class builds a path inside it.

    Building one touches nothing on disk; `create()` makes the folder (0700, parents too).
    """

    path: Path

    @classmethod
    def under(cls, root: Path, name: str) -> InstallDir:
        """The install named `name` under the state root `root`."""
        return cls(Path(root) / INSTALLS / name)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def root(self) -> Path:
        """The state root this install lives under."""
        return self.path.parent.parent

    def create(self) -> InstallDir:
        try:
            ensure_dir(self.root)
            ensure_dir(self.path.parent)
            ensure_dir(self.path)
        except OSError as exc:
            # A file where the folder should be, a read-only mount: the operator's input, not a crash.
            from hfwizard.errors import BadInput
            from hfwizard.files import check_state_root

            check_state_root(self.root)
            raise BadInput(f"the state directory {self.root} cannot be used ({exc.strerror})",
                           remedy="choose a writable folder with --state-dir or $HFWIZARD_STATE_DIR") from None
        return self

    def exists(self) -> bool:
        return self.path.is_dir()

    # ---- the files --------------------------------------------------------------------------

    @property
    def profile_path(self) -> Path:
        """The complete profile: what install, resume and export read."""
        return self.path / "profile.yaml"

    @property
    def draft_path(self) -> Path:
        """The wizard's answers so far (validated fields only)."""
        return self.path / "draft.yaml"

    @property
    def position_path(self) -> Path:
        """The wizard step the operator was last on."""
        return self.path / "wizard.json"

    @property
    def journal_path(self) -> Path:
        return self.path / "journal.jsonl"

    @property
    def uninstall_journal_path(self) -> Path:
        """The journal of `hfwizard uninstall` (its own: `resume` must never take it for an install's)."""
        return self.path / "uninstall.jsonl"

    @property
    def previous_profile_path(self) -> Path:
        """The profile an upgrade started from, put back when the upgrade is rolled back."""
        return self.path / "profile.previous.yaml"

    @property
    def lock_path(self) -> Path:
        """The kernel (fcntl) lock file; its holder is written to `lock_holder_path`."""
        return self.path / "install.lock"

    @property
    def lock_holder_path(self) -> Path:
        return self.path / "lock-holder.json"

    @property
    def helm_guard_path(self) -> Path:
        """Held (flock, shared) by every Helm child of a run for its whole life; see engine/helm_guard.py."""
        return self.path / "helm.guard"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def emulator_log_path(self) -> Path:
        """The sandbox's emulated API server log."""
        return self.path / "emulator.log"

    @property
    def cache_dir(self) -> Path:
        """Downloaded charts and other things that can be fetched again."""
        return self.path / "cache"

    # ---- what the files say -----------------------------------------------------------------

    def read_journal(self) -> JournalState:
        return read_state(self.journal_path)

    def status(self) -> InstallStatus:
        return self.read_journal().status if self.journal_path.exists() else InstallStatus.NEW

    def state(self) -> str:
        """new, interrupted, failed or done: the status as `hfwizard status` lists it."""
        return self.status().listed

    def has_draft(self) -> bool:
        return self.draft_path.is_file()

    def load_profile(self) -> LoadedProfile:
        if not self.profile_path.exists():
            raise BadInput(f"install {self.name!r} has no saved profile ({self.profile_path})")
        # Imported here: building the profile model costs a quarter second, and listing installs (the
        # wizard's first screen, `hfwizard status`) does not need it.
        from hfwizard.profile_io import load_profile

        return load_profile(self.profile_path)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state(), "path": str(self.path)}


def list_install_dirs(root: Path) -> list[InstallDir]:
    """The installs kept under the state root, by name."""
    base = Path(root) / INSTALLS
    if not base.is_dir():
        return []
    return sorted((InstallDir(p) for p in base.iterdir() if p.is_dir()), key=lambda i: i.name)
