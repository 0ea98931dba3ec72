"""Files and folders the operator names: bounded reading (regular files only, size first), a usable state dir."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from hfwizard.errors import BadInput, HfwizardError

# Limits per kind of file. A profile is a few KB; a kubeconfig with embedded certificates some tens;
# a CA bundle (the system's has ~150 certificates) a few hundred; a secret (a key, a service-account
# JSON) a few KB.
PROFILE_LIMIT = 1024 * 1024
KUBECONFIG_LIMIT = 4 * 1024 * 1024
CA_LIMIT = 4 * 1024 * 1024
SECRET_LIMIT = 256 * 1024

ErrorFactory = Callable[..., HfwizardError]


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} bytes"


def check_regular(path: str | Path, *, what: str, limit: int, error: ErrorFactory = BadInput) -> Path:
    """`path` if it names a readable regular file within `limit` bytes; else `error` saying what it is.
    For files a library opens itself (kubeconfig, CA bundles): it would hang on a FIFO or read
    /dev/zero until memory runs out."""
    p = Path(path).expanduser()
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error(f"{what}: {p} does not exist", remedy="check the path") from None
    except PermissionError:
        raise error(f"{what}: {p} is not reachable by this user",
                    remedy="fix the permissions of the file or its folders") from None
    except OSError as exc:
        raise error(f"{what}: {p} cannot be read ({exc.strerror})", remedy="check the path") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what}: {p} is {_kind(st.st_mode)}, not a regular file",
                    remedy="point it at the file itself")
    if st.st_size > limit:
        raise error(f"{what}: {p} is {_size(st.st_size)}, over the {_size(limit)} such a file may be",
                    remedy="check it is the file you meant")
    return p


def read_bounded(path: str | Path, *, what: str, limit: int, error: ErrorFactory = BadInput) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Never blocks on a FIFO, never reads more than
    `limit` + 1 bytes (a file that grows, or a /proc file that says size 0, is still bounded)."""
    p = check_regular(path, what=what, limit=limit, error=error)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(p, flags)
    except PermissionError:
        raise error(f"{what}: {p} is not readable by this user",
                    remedy="fix the file's permissions for this user") from None
    except OSError as exc:
        raise error(f"{what}: {p} cannot be read ({exc.strerror})", remedy="check the path") from None
    try:
        # Checked again on the open file: the path may have been swapped for a FIFO since the stat.
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what}: {p} is {_kind(st.st_mode)}, not a regular file",
                        remedy="point it at the file itself")
        chunks: list[bytes] = []
        got = 0
        while got <= limit:
            try:
                chunk = os.read(fd, min(65536, limit + 1 - got))
            except OSError as exc:
                raise error(f"{what}: {p} cannot be read ({exc.strerror})") from None
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:
            raise error(f"{what}: {p} is over the {_size(limit)} such a file may be",
                        remedy="check it is the file you meant")
        return b"".join(chunks)
    finally:
        os.close(fd)


def check_state_root(root: Path) -> Path:
    """`root` when hfwizard can keep installs there (a writable folder, or one it can create)."""
    root = Path(root).expanduser()
    probe = root
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    where = "the state directory (--state-dir / $HFWIZARD_STATE_DIR)"
    remedy = "choose a writable folder with --state-dir or $HFWIZARD_STATE_DIR"
    if not probe.is_dir():
        raise BadInput(f"{where}: {probe} is not a folder" + (f" (needed for {root})" if probe != root else ""),
                       remedy=remedy)
    if not os.access(probe, os.W_OK | os.X_OK):
        # access(2) answers EROFS as "not writable" too: a read-only mount lands here.
        why = "on a read-only file system" if _read_only(probe) else "not writable by this user"
        raise BadInput(f"{where}: {probe} is {why}", remedy=remedy)
    return root


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
