"""An emulated cluster on loopback: the store, the HTTP server and the seeding helpers together."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import kmock
import yaml

from hfwizard.sandbox.emulator import seeding
from hfwizard.sandbox.emulator.api import JSON
from hfwizard.sandbox.emulator.controllers.logs import ContainerLogs
from hfwizard.sandbox.emulator.server import SandboxEmulator
from hfwizard.sandbox.emulator.state import StateFile, kill_point, load_state
from hfwizard.sandbox.emulator.store import Store

__all__ = ["EmulatedCluster"]


class EmulatedCluster:
    """An emulated Kubernetes cluster on loopback: `async with EmulatedCluster(...) as cluster:`."""

    def __init__(
        self,
        *,
        state_file: str | os.PathLike[str] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        version: str = "v1.32.3",
        strict_namespaces: bool = True,
    ) -> None:
        self._state = StateFile(Path(state_file)) if state_file else None
        self.store = Store(
            state_file=Path(state_file) if state_file else None,
            strict_namespaces=strict_namespaces,
            on_write=self._state,
        )
        self.server = SandboxEmulator(store=self.store, git_version=version)
        self._host = host
        self._port = port
        self._server: kmock.Server | None = None

    @property
    def emulator(self) -> Store:
        """The direct in-process API (get_object, list_objects, upsert, patch_status, delete_object)."""
        return self.store

    @property
    def logs(self) -> ContainerLogs:
        """The containers' logs: the controller player writes them, `GET .../pods/{name}/log` serves them."""
        return self.server.logs

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulated cluster is not running")
        return f"http://{self._host}:{self._server.port}"

    @property
    def version(self) -> str:
        return self.server.git_version

    @version.setter
    def version(self, value: str) -> None:
        self.server.git_version = value

    @property
    def denied(self) -> set[tuple[str, str]]:
        """(verb, resource) pairs a SelfSubjectAccessReview answers "not allowed" ("*" matches any)."""
        return self.server.denied

    async def __aenter__(self) -> Self:
        await self.server.__aenter__()
        if not load_state(self.store):
            for name in seeding.SYSTEM_NAMESPACES:
                await self.store.upsert(seeding.namespace(name))
        self._server = kmock.Server(self.server, host=self._host, port=self._port or None, user_agent="")
        await self._server.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.store.close_streams()
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
            self._server = None
        await self.server.__aexit__(None, None, None)
        if self._state is not None:
            async with self.store.lock:
                self._state.close(self.store)

    def kubeconfig(self, context: str = "sandbox") -> JSON:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "sandbox"}}],  # the emulator checks no credentials
            "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": "default"}}],
        }

    def write_kubeconfig(self, path: str | os.PathLike[str], context: str = "sandbox") -> Path:
        """Write a kubeconfig for this cluster (mode 0600) and return its path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(self.kubeconfig(context), handle, sort_keys=False)
        os.chmod(target, 0o600)
        return target

    # ---- seeding -------------------------------------------------------------------------------

    async def add_node(
        self,
        name: str,
        *,
        cpu: str = "8",
        memory: str = "32Gi",
        ready: bool = True,
        labels: Mapping[str, str] | None = None,
        kubelet_version: str | None = None,
        allocatable_cpu: str | None = None,
        allocatable_memory: str | None = None,
        pods: str = "110",
        role: str = "worker",
        taints: list[JSON] | None = None,
    ) -> JSON:
        """Create or replace a Node: capacity, allocatable, labels, a Ready condition, kubeletVersion."""
        return await self.store.upsert(
            seeding.node(
                name,
                version=kubelet_version or self.version,
                cpu=cpu,
                memory=memory,
                ready=ready,
                labels=labels,
                allocatable_cpu=allocatable_cpu,
                allocatable_memory=allocatable_memory,
                pods=pods,
                role=role,
                taints=taints,
            )
        )

    async def add_storage_class(
        self, name: str = "standard", *, default: bool = True, provisioner: str = "rancher.io/local-path"
    ) -> JSON:
        return await self.store.upsert(seeding.storage_class(name, default=default, provisioner=provisioner))

    async def add_ingress_class(
        self, name: str = "nginx", *, controller: str = "k8s.io/ingress-nginx", default: bool = False
    ) -> JSON:
        return await self.store.upsert(seeding.ingress_class(name, controller=controller, default=default))

    async def add_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> JSON:
        return await self.store.upsert(seeding.namespace(name, labels))

    async def seed_default(
        self,
        *,
        workers: int = 6,
        cpu: str = "8",
        memory: str = "32Gi",
        cloud: str = "generic",
        gpu_nodes: int = 0,
        ingress_classes: tuple[str, ...] = (),
    ) -> None:
        """Seed a fresh cluster (see `seeding.default_objects`) all at once: every object is made in
        memory and the state file is written once, marked seeded, so a kill leaves no half-seeded
        cluster (a state file without the mark is seeded again at the next start)."""
        objects = seeding.default_objects(
            version=self.version,
            workers=workers,
            cpu=cpu,
            memory=memory,
            cloud=cloud,
            gpu_nodes=gpu_nodes,
            ingress_classes=ingress_classes,
        )
        async with self.store.lock:
            self.store.cloud = cloud
            for index, obj in enumerate(objects):
                self.store.upsert_locked(obj)
                if index == len(objects) // 2:
                    kill_point("emulator-seed")
            self.store.seeded = True
            self.store.saved()
