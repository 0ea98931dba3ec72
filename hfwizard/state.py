"""Where hfwizard keeps what it writes, and how it writes it: atomically, 0600 files in 0700 folders."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def default_root() -> Path:
    """The state root: $HFWIZARD_STATE_DIR, else platformdirs' user state dir."""
    env = os.environ.get("HFWIZARD_STATE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_state_path

    return user_state_path("hfwizard", appauthor=False)


def ensure_dir(path: Path) -> Path:
    """Create `path` (and parents) 0700; tighten an existing folder we own to 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    with contextlib.suppress(PermissionError):
        if path.stat().st_mode & 0o777 != DIR_MODE:
            path.chmod(DIR_MODE)
    return path


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` so a crash leaves either the old file or the new one, never a torn one."""
    ensure_dir(path.parent)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename or a new file in it survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def install_dir(root: Path, name: str) -> Path:
    """The state directory of one install (`<root>/installs/<name>`), created 0700."""
    try:
        ensure_dir(root)
        ensure_dir(root / "installs")
        return ensure_dir(root / "installs" / name)
    except OSError as exc:
        # A file where the folder should be, a read-only mount: the operator's input, not a crash.
        from hfwizard.errors import BadInput
        from hfwizard.files import check_state_root

        check_state_root(root)
        raise BadInput(f"the state directory {root} cannot be used ({exc.strerror})",
                       remedy="choose a writable folder with --state-dir or $HFWIZARD_STATE_DIR") from None
