"""An emulated cluster (and its controllers) on its own event loop in a thread, for sync code and tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from hfwizard.sandbox.emulator.cluster import EmulatedCluster
from hfwizard.sandbox.emulator.controllers import ControllerPlayer

if TYPE_CHECKING:
    from hfwizard.sandbox.clickhouse_operator import ClickHouseOperator

__all__ = ["ClusterThread"]

T = TypeVar("T")


class ClusterThread:
    """Runs an EmulatedCluster (and optionally the controller player, with the ClickHouse operator beside
    it: `.clickhouse`, steered with hold/release/fail/heal from any thread) on its own loop in a thread."""

    def __init__(
        self,
        *,
        controllers: bool = True,
        ready_delay: float = 0.0,
        step_delay: float = 0.0,
        unreachable_registries: frozenset[str] = frozenset(),
        blocked_egress: dict[str, str] | None = None,
        **cluster_kwargs: Any,
    ) -> None:
        self._kwargs = cluster_kwargs
        self._unreachable = unreachable_registries
        self._egress = dict(blocked_egress or {})  # host -> dns | refused | timeout (see bare_pods)
        self._controllers_enabled = controllers
        self._ready_delay = ready_delay
        self._step_delay = step_delay
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.cluster: EmulatedCluster | None = None
        self.controllers: ControllerPlayer | None = None
        self.clickhouse: ClickHouseOperator | None = None

    def start(self, timeout: float = 10.0) -> Self:
        self._thread = threading.Thread(target=self._run, name="emulated-cluster", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the emulated cluster did not start in time")
        if self._error is not None:
            raise RuntimeError("the emulated cluster failed to start") from self._error
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with EmulatedCluster(**self._kwargs) as cluster:
                self.cluster = cluster
                player = None
                if self._controllers_enabled:
                    player = ControllerPlayer(
                        cluster.store,
                        ready_delay=self._ready_delay,
                        step_delay=self._step_delay,
                        unreachable_registries=self._unreachable,
                        logs=cluster.logs,
                        egress=self._egress,
                    )
                    await player.start()
                    self.controllers = player
                    self.clickhouse = await start_clickhouse_operator(cluster)
                self._ready.set()
                await self._stop.wait()
                if self.clickhouse is not None:
                    await self.clickhouse.stop()
                if player is not None:
                    await player.stop()
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def call(self, fn: Callable[[EmulatedCluster], Coroutine[Any, Any, T]], timeout: float = 10.0) -> T:
        """Run `fn(cluster)` on the cluster's loop and return its result."""
        assert self._loop is not None and self.cluster is not None
        return asyncio.run_coroutine_threadsafe(fn(self.cluster), self._loop).result(timeout)

    @property
    def url(self) -> str:
        assert self.cluster is not None
        return self.cluster.url

    def write_kubeconfig(self, path: str | os.PathLike[str], context: str = "sandbox") -> Path:
        assert self.cluster is not None
        return self.cluster.write_kubeconfig(path, context)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def start_clickhouse_operator(cluster: EmulatedCluster) -> ClickHouseOperator:
    """The emulated Altinity operator on the cluster's loop: it acts once the operator chart's
    Deployment is ready, as the real one would (so a cluster without the chart is unchanged)."""
    from hfwizard.sandbox.clickhouse_operator import ClickHouseOperator  # it imports this package

    operator = ClickHouseOperator(cluster.store)
    await operator.start()
    return operator
