"""The emulated cluster's state on disk: a snapshot plus an append-only log of every committed write.

Each write the API answers is first appended to the log (`<state>.log`: one JSON line per transaction,
holding the objects it changed), so a SIGKILL of the emulator loses nothing it acknowledged, as with a
real API server's etcd. Rewriting the whole snapshot after every write, as this module did before, cost
two thirds of the emulator's CPU during a whole-platform install. The log is folded into a fresh
snapshot (written atomically) when it outgrows the snapshot and when the emulator stops; entries
already in the snapshot (resourceVersion at or below its own) are skipped on load, so a kill between
the snapshot's rename and the log's truncation replays nothing twice. A torn last line (killed in the
middle of an append) is a transaction that never committed, and is dropped. Appends are not fsynced:
the state outlives the process, not the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hfwizard.sandbox.emulator.store import Store

__all__ = ["KILL_ENV", "StateFile", "kill_point", "load_state", "read_state", "save_state"]

KILL_ENV = "HFWIZARD_TEST_KILL_AT"  # test hook, as the engine's: SIGKILL ourselves at a named point
_MIN_LOG_BYTES = 4 << 20  # below this the log is never folded while running


def kill_point(name: str) -> None:
    """Die by SIGKILL here when the test hook names this point (how tests show a kill is survived)."""
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def log_path(state_file: Path) -> Path:
    return state_file.with_name(state_file.name + ".log")


def read_state(state_file: Path) -> dict[str, Any]:
    """The state as one document (the snapshot's format) with the log applied: what a reader outside
    the emulator (tests, tools) should use instead of parsing the snapshot alone."""
    state: dict[str, Any] = {"resourceVersion": 1, "seeded": False, "cloud": "generic", "crds": [], "objects": []}
    if state_file.exists():
        state |= json.loads(state_file.read_text())
    objects = {_entry_key(e): e for e in state["objects"]}
    base_rv = int(state.get("resourceVersion", 1))
    for entry in _log_entries(log_path(state_file), base_rv):
        for resource, namespace, name, obj in entry.get("put", []):
            objects[(resource, namespace, name)] = {"resource": resource, "object": obj}
        for resource, namespace, name in entry.get("del", []):
            objects.pop((resource, namespace, name), None)
        state |= {k: entry[k] for k in ("seeded", "cloud") if k in entry}
        state["resourceVersion"] = max(int(state["resourceVersion"]), int(entry["rv"]))
    state["objects"] = list(objects.values())
    state["crds"] = [e["object"] for e in state["objects"] if e["object"].get("kind") == "CustomResourceDefinition"]
    return state


def _entry_key(entry: dict[str, Any]) -> tuple[str, str | None, str]:
    meta = entry["object"]["metadata"]
    return (entry["resource"], meta.get("namespace"), meta["name"])


def _log_entries(path: Path, after_rv: int) -> Iterator[dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            return  # a torn last append: that transaction never committed
        if int(entry["rv"]) > after_rv:
            yield entry


def load_state(store: Store) -> bool:
    """Load objects from the store's state file and its log, if any; True when something was loaded."""
    if store.state_file is None or not (store.state_file.exists() or log_path(store.state_file).exists()):
        return False
    state = read_state(store.state_file)
    for crd in state["crds"]:
        store.catalogue.register_crd(crd)
    for entry in state["objects"]:
        group, version, plural = entry["resource"].split("/")
        info = store.catalogue.get(group, version, plural)
        if info is not None:
            store.load(info, entry["object"])
    store.rv = max(int(state["resourceVersion"]), store.rv)
    store.seeded = bool(state["seeded"])
    store.cloud = str(state["cloud"] or "generic")
    return True


class StateFile:
    """The store's `on_write`: appends each transaction to the log; folds it into the snapshot now and
    then. `close()` folds it for good (a stopped emulator leaves one self-contained snapshot)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.log = log_path(path)
        self._fd: int | None = None
        self._log_bytes = self.log.stat().st_size if self.log.exists() else 0
        self._snapshot_bytes = path.stat().st_size if path.exists() else 0
        self._marks: tuple[bool, str] | None = None  # (seeded, cloud) as last written

    def __call__(self, store: Store) -> None:
        changed = store.take_changes()
        if not changed and self._marks == (store.seeded, store.cloud):
            return  # a read: nothing to record
        self._marks = (store.seeded, store.cloud)
        entry: dict[str, Any] = {"rv": store.rv, "seeded": store.seeded, "cloud": store.cloud}
        entry["put"] = [[*key, obj] for key, obj in changed.items() if obj is not None]
        entry["del"] = [list(key) for key, obj in changed.items() if obj is None]
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(self._fd, line)
        self._log_bytes += len(line)
        if not self._snapshot_bytes or self._log_bytes > max(_MIN_LOG_BYTES, 2 * self._snapshot_bytes):
            self.fold(store)

    def fold(self, store: Store) -> None:
        """Write the whole state as the snapshot, then empty the log (see the module docstring)."""
        store.take_changes()
        self._snapshot_bytes = save_state(store)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.log, os.O_WRONLY | os.O_TRUNC | os.O_CREAT | os.O_APPEND, 0o600)
        self._log_bytes = 0

    def close(self, store: Store) -> None:
        self.fold(store)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            self.log.unlink()


def save_state(store: Store) -> int:
    """Write every object to the state file atomically (temp file, fsync, rename, directory fsync);
    returns its size."""
    if store.state_file is None:
        return 0
    objects = []
    crds = []
    for info in store.catalogue.types.values():
        for obj in store.items(info, None):
            objects.append({"resource": info.key, "object": obj})
            if info.kind == "CustomResourceDefinition":
                crds.append(obj)
    state = {"resourceVersion": store.rv, "seeded": store.seeded, "cloud": store.cloud}
    state |= {"crds": crds, "objects": objects}
    payload = json.dumps(state, separators=(",", ":")).encode()
    _write_atomically(store.state_file, payload)
    return len(payload)


def _write_atomically(target: Path, payload: bytes) -> None:
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
