"""The emulated cluster's state file: every object, written atomically after each change."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from pathlib import Path

from hfwizard.sandbox.emulator.store import Store

__all__ = ["KILL_ENV", "kill_point", "load_state", "save_state"]

KILL_ENV = "HFWIZARD_TEST_KILL_AT"  # test hook, as the engine's: SIGKILL ourselves at a named point


def kill_point(name: str) -> None:
    """Die by SIGKILL here when the test hook names this point (how tests show a kill is survived)."""
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def load_state(store: Store) -> bool:
    """Load objects from the store's state file, if there is one; True when something was loaded."""
    if store.state_file is None or not store.state_file.exists():
        return False
    state = json.loads(store.state_file.read_text())
    for crd in state.get("crds", []):
        store.catalogue.register_crd(crd)
    for entry in state.get("objects", []):
        group, version, plural = entry["resource"].split("/")
        info = store.catalogue.get(group, version, plural)
        if info is None:
            continue
        obj = entry["object"]
        store.objects[store.key(info, obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj
    store.rv = max(int(state.get("resourceVersion", 1)), store.rv)
    store.seeded = bool(state.get("seeded"))
    store.cloud = str(state.get("cloud") or "generic")
    return True


def save_state(store: Store) -> None:
    """Write every object to the state file atomically: temp file, fsync, rename, directory fsync."""
    if store.state_file is None:
        return
    objects = []
    crds = []
    for info in store.catalogue.types.values():
        for obj in store.items(info, None):
            objects.append({"resource": info.key, "object": obj})
            if info.kind == "CustomResourceDefinition":
                crds.append(obj)
    state = {"resourceVersion": store.rv, "seeded": store.seeded, "cloud": store.cloud}
    state |= {"crds": crds, "objects": objects}
    payload = json.dumps(state, separators=(",", ":"))
    _write_atomically(store.state_file, payload.encode())


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
