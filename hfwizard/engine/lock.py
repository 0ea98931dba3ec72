"""The install lock: a file lock in the install's state dir plus a Lease in the target namespace.

The file lock (fcntl, through filelock) keeps two processes on this machine off one install; the
kernel drops it when its holder dies, so a killed installer never leaves it behind. The Lease
(coordination.k8s.io/v1, `hfwizard-install`) keeps installs from different machines or state dirs off
one target. It names its holder (user@host, pid, install name) and is renewed while the install runs;
a Lease whose holder is gone (its pid no longer runs on this host) or that was not renewed within its
duration is taken over, with the Lease's resourceVersion guarding against two takers at once.

Fencing: a holder frozen past the Lease's duration (a suspended laptop, a paused VM) may have been
taken over while it slept. So the holder re-reads its Lease before every step and every change it
makes to the cluster (`InstallLock.check`, raising LockLost, exit 4, naming the new holder), and a
renewal that finds another holder (or a write that races one) reports the loss instead of writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import getpass
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hfwizard.errors import LockHeld, LockLost
from hfwizard.state import FILE_MODE, atomic_write, ensure_dir
from hfwizard.store.install_dir import InstallDir

LEASE_NAME = "hfwizard-install"
HOLDER_ANNOTATION = "hfwizard.io/holder"
DEFAULT_LEASE_SECONDS = 30


@dataclass(frozen=True)
class Holder:
    user: str
    host: str
    pid: int
    install: str

    @classmethod
    def me(cls, install: str) -> Holder:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return cls(user, socket.gethostname(), os.getpid(), install)

    @property
    def identity(self) -> str:
        return f"{self.user}@{self.host}/pid-{self.pid}/{self.install}"

    def describe(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid}, install {self.install!r})"

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "host": self.host, "pid": self.pid, "install": self.install}

    @classmethod
    def from_json(cls, data: Any) -> Holder | None:
        try:
            return cls(str(data["user"]), str(data["host"]), int(data["pid"]), str(data["install"]))
        except (KeyError, TypeError, ValueError):
            return None

    def is_gone(self) -> bool:
        """True when the holder ran on this host and its process no longer exists."""
        if self.host != socket.gethostname():
            return False
        return not _pid_alive(self.pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    # A zombie (killed, not yet reaped by its parent) holds nothing any more.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _micro_time(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    if isinstance(value, str) and value:
        with contextlib.suppress(ValueError):
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


class FileLock:
    """The state-dir half: an exclusive, non-blocking fcntl lock with the holder written beside it."""

    def __init__(self, install: InstallDir, holder: Holder) -> None:
        self.install = install
        self.holder = holder
        self._lock: Any = None

    def acquire(self) -> None:
        import filelock

        if str(self.install.lock_path) in _TAKEN_EARLY:
            return  # this process took it before starting what the run needs (the sandbox's cluster)
        ensure_dir(self.install.path)
        # No soft (file-exists) fallback: only a kernel lock disappears with a killed holder.
        lock = filelock.FileLock(str(self.install.lock_path), mode=FILE_MODE, fallback_to_soft=False)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            # The holder takes the lock, then writes its name: give a racing start a moment to finish.
            other = self.current_holder()
            for _ in range(20):
                if other is not None:
                    break
                time.sleep(0.025)
                other = self.current_holder()
            who = other.describe() if other else "another process on this machine"
            raise LockHeld(f"install {self.holder.install!r} is being run by {who}",
                           remedy="wait for it to finish (`hfwizard status`), or stop that process") from None
        self._lock = lock
        atomic_write(self.install.lock_holder_path, json.dumps(self.holder.to_json()))

    def current_holder(self) -> Holder | None:
        try:
            return Holder.from_json(json.loads(self.install.lock_holder_path.read_text()))
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self._lock is not None and _TAKEN_EARLY.get(str(self.install.lock_path)) is self:
            del _TAKEN_EARLY[str(self.install.lock_path)]
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self.install.lock_holder_path.unlink()
            self._lock.release()
            self._lock = None


# Lock paths whose file lock this process took ahead of the run (see `take_early`): the run's own
# InstallLock joins it instead of contending with itself, and leaves its release to the taker.
_TAKEN_EARLY: dict[str, FileLock] = {}


@contextlib.contextmanager
def take_early(install: InstallDir, name: str) -> Iterator[FileLock]:
    """Hold the install's file lock while the block runs, before anything else starts (the sandbox takes
    it before its emulated cluster, so a second rehearsal on the same state dir exits 4 at once instead
    of starting a second cluster on the same files). The run's InstallLock inside the block joins it."""
    lock = FileLock(install, Holder.me(name))
    lock.acquire()
    _TAKEN_EARLY[str(install.lock_path)] = lock
    try:
        yield lock
    finally:
        lock.release()


class LeaseLock:
    """The cluster half: a coordination.k8s.io/v1 Lease in the target namespace, renewed while held."""

    def __init__(self, api_client: Any, namespace: str, holder: Holder, *,
                 duration_s: int = DEFAULT_LEASE_SECONDS, name: str = LEASE_NAME) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.holder = holder
        self.duration_s = duration_s
        self.name = name
        self._renewer: asyncio.Task[None] | None = None
        self._held = False
        self.took_over_from: Holder | None = None
        self.lost: LockLost | None = None

    def _api(self) -> Any:
        from kubernetes import client

        return client.CoordinationV1Api(self.api_client)

    def _body(self, *, acquire: datetime.datetime, renew: datetime.datetime, rv: str | None,
              transitions: int) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": self.name, "namespace": self.namespace,
            "labels": {"app.kubernetes.io/managed-by": "hfwizard"},
            "annotations": {HOLDER_ANNOTATION: json.dumps(self.holder.to_json())},
        }
        if rv is not None:
            meta["resourceVersion"] = rv
        return {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
            "spec": {"holderIdentity": self.holder.identity, "leaseDurationSeconds": self.duration_s,
                     "acquireTime": _micro_time(acquire), "renewTime": _micro_time(renew),
                     "leaseTransitions": transitions},
        }

    def acquire_sync(self) -> None:
        from kubernetes.client.exceptions import ApiException

        api = self._api()
        self._ensure_namespace()
        now = _now()
        try:
            api.create_namespaced_lease(self.namespace, self._body(acquire=now, renew=now, rv=None, transitions=0))
            self._held = True
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
        # The Lease exists: ours from a killed run of this very process id (impossible), a live
        # holder (refuse), or a dead / expired one (take over).
        raw = api.api_client.sanitize_for_serialization(api.read_namespaced_lease(self.name, self.namespace))
        spec = raw.get("spec") or {}
        meta = raw.get("metadata") or {}
        other = _holder_of(meta, spec)
        identity = spec.get("holderIdentity")
        renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
        duration = int(spec.get("leaseDurationSeconds") or self.duration_s)
        expired = renewed is None or (now - renewed).total_seconds() > duration
        released = not identity
        gone = other is not None and other.is_gone()
        if identity != self.holder.identity and not (released or expired or gone):
            who = other.describe() if other else str(identity)
            age = f"{(now - renewed).total_seconds():.0f}s ago" if renewed else "never"
            raise LockHeld(
                f"another install holds namespace {self.namespace!r}: {who}, lease renewed {age}",
                remedy=f"wait for it to finish; a holder that died is taken over once the lease is "
                       f"{duration}s old")
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if identity == self.holder.identity else 1)
        body = self._body(acquire=now, renew=now, rv=meta.get("resourceVersion"), transitions=transitions)
        try:
            api.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as exc:
            if exc.status == 409:  # someone else took it between our read and our write
                raise LockHeld(f"another install took the lease on namespace {self.namespace!r} just now",
                               remedy="run `hfwizard status` and try again when it has finished") from None
            raise
        self.took_over_from = other if identity and identity != self.holder.identity else None
        self._held = True

    def _ensure_namespace(self) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        core = client.CoreV1Api(self.api_client)
        try:
            core.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": self.namespace,
                                                "labels": {"app.kubernetes.io/managed-by": "hfwizard"}}})
        except ApiException as exc:
            if exc.status not in (409, 403):  # exists already; or we may not create namespaces (precreated)
                raise

    def _read(self) -> dict[str, Any]:
        api = self._api()
        return dict(api.api_client.sanitize_for_serialization(api.read_namespaced_lease(self.name, self.namespace)))

    def _lost(self, raw: dict[str, Any] | None) -> LockLost:
        spec = (raw or {}).get("spec") or {}
        other = _holder_of((raw or {}).get("metadata") or {}, spec)
        who = other.describe() if other else (spec.get("holderIdentity") or "nobody (the Lease was released)")
        return LockLost(f"lost the install lock on namespace {self.namespace!r} to {who} while this run was "
                        f"stopped for longer than the lease ({self.duration_s}s): stopping before changing "
                        "anything more",
                        remedy="let that install finish (`hfwizard status`); then `hfwizard resume` here if needed")

    def check_sync(self) -> None:
        """Raise LockLost unless the Lease still names us (read fresh from the API)."""
        from kubernetes.client.exceptions import ApiException

        try:
            raw = self._read()
        except ApiException as exc:
            if exc.status == 404:
                raise self._lost(None) from None
            raise
        if ((raw.get("spec") or {}).get("holderIdentity")) != self.holder.identity:
            raise self._lost(raw)

    def renew_sync(self) -> None:
        """Renew the Lease if it still names us; raise LockLost if another holder has it.

        A replace guarded by the resourceVersion just read, not a blind patch: a holder waking from a
        freeze must not write itself back over the install that took the Lease meanwhile."""
        from kubernetes.client.exceptions import ApiException

        raw = self._read()
        spec = raw.get("spec") or {}
        if spec.get("holderIdentity") != self.holder.identity:
            raise self._lost(raw)
        spec["renewTime"] = _micro_time(_now())
        try:
            self._api().replace_namespaced_lease(self.name, self.namespace, raw)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.check_sync()  # someone wrote between our read and our write: is it still ours?

    def release_sync(self) -> None:
        """Clear the holder (a released Lease is free at once) without deleting the object."""
        from kubernetes.client.exceptions import ApiException

        if not self._held:
            return
        api = self._api()
        try:
            raw = api.api_client.sanitize_for_serialization(api.read_namespaced_lease(self.name, self.namespace))
            if (raw.get("spec") or {}).get("holderIdentity") == self.holder.identity:
                raw["spec"]["holderIdentity"] = None
                raw["spec"]["renewTime"] = None
                raw["spec"]["acquireTime"] = None
                api.replace_namespaced_lease(self.name, self.namespace, raw)
        except ApiException:
            pass  # not ours any more, or gone: nothing to release
        self._held = False

    async def acquire(self, on_lost: Callable[[LockLost], None] | None = None) -> None:
        await asyncio.to_thread(self.acquire_sync)
        self._renewer = asyncio.create_task(self._renew_loop(on_lost), name="lease-renewer")

    async def check(self) -> None:
        """Raise LockLost unless we still hold the Lease (a fresh read: call it before a change)."""
        if self.lost is not None:
            raise self.lost
        try:
            await asyncio.to_thread(self.check_sync)
        except LockLost as exc:
            self.lost = exc
            self._held = False
            raise

    async def _renew_loop(self, on_lost: Callable[[LockLost], None] | None) -> None:
        while True:
            await asyncio.sleep(max(self.duration_s / 3, 0.5))
            try:
                await asyncio.to_thread(self.renew_sync)
            except LockLost as exc:
                self.lost, self._held = exc, False
                if on_lost is not None:
                    on_lost(exc)
                return
            except Exception:  # a missed renewal is not fatal: the next may get through in time
                continue

    async def release(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await asyncio.to_thread(self.release_sync)


def _holder_of(meta: dict[str, Any], spec: dict[str, Any]) -> Holder | None:
    raw = (meta.get("annotations") or {}).get(HOLDER_ANNOTATION)
    if raw:
        with contextlib.suppress(ValueError):
            h = Holder.from_json(json.loads(raw))
            if h is not None and spec.get("holderIdentity") == h.identity:
                return h
    return None


class InstallLock:
    """Both halves together: `async with InstallLock(...)`; raises LockHeld (exit 4) naming the holder.

    `check()` before each step and each change to the cluster raises LockLost once another install
    has taken the Lease; `on_lost` hears of it from the renewer as soon as a renewal sees it."""

    def __init__(self, install: InstallDir, name: str, api_client: Any, namespace: str, *,
                 lease_seconds: int = DEFAULT_LEASE_SECONDS,
                 on_lost: Callable[[LockLost], None] | None = None) -> None:
        self.holder = Holder.me(name)
        self.file = FileLock(install, self.holder)
        self.lease = LeaseLock(api_client, namespace, self.holder, duration_s=lease_seconds)
        self._on_lost = on_lost

    async def check(self) -> None:
        await self.lease.check()

    async def __aenter__(self) -> InstallLock:
        self.file.acquire()
        try:
            await self.lease.acquire(self._on_lost)
        except BaseException:
            self.file.release()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.lease.release()
        finally:
            self.file.release()
