"""`python -m hfwizard.sandbox.emulator`: a cluster in its own process that outlives the installer."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from hfwizard.sandbox.emulator.cluster import EmulatedCluster
from hfwizard.sandbox.emulator.controllers import ControllerPlayer, kubelet
from hfwizard.sandbox.emulator.controllers.bare_pods import parse_egress
from hfwizard.sandbox.emulator.seeding import CLOUDS
from hfwizard.sandbox.emulator.thread import start_clickhouse_operator

if TYPE_CHECKING:
    from hfwizard.sandbox.clickhouse_operator import ClickHouseOperator

__all__ = ["main"]


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with EmulatedCluster(state_file=args.state, port=args.port, version=args.version) as cluster:
        if not cluster.store.seeded and args.workers:  # fresh, or a seed cut short by a kill
            await cluster.seed_default(
                workers=args.workers,
                cpu=args.cpu,
                memory=args.memory,
                cloud=args.cloud,
                gpu_nodes=args.gpu_nodes,
                ingress_classes=tuple(args.ingress_class),
            )
        if args.kubeconfig:
            cluster.write_kubeconfig(args.kubeconfig, context=args.context)
        player: ControllerPlayer | None = None
        clickhouse: ClickHouseOperator | None = None
        if not args.no_controllers:
            player = ControllerPlayer(
                cluster.store,
                ready_delay=args.ready_delay,
                step_delay=args.step_delay,
                unreachable_registries=await _unreachable(args),
                logs=cluster.logs,
                egress=parse_egress(args.blocked_egress),
            )
            await player.start()
            clickhouse = await start_clickhouse_operator(cluster)
            for glob in args.hold_clickhouse:
                clickhouse.hold(glob)
            for glob in args.fail_clickhouse:
                clickhouse.fail(glob)
        ready = {
            "event": "ready",
            "url": cluster.url,
            "pid": os.getpid(),
            "kubeconfig": str(args.kubeconfig) if args.kubeconfig else None,
        }
        print(json.dumps(ready), flush=True)
        await stop.wait()
        if clickhouse is not None:
            await clickhouse.stop()
        if player is not None:
            await player.stop()


async def _unreachable(args: argparse.Namespace) -> dict[str, str]:
    """The registries pulls fail from: the steered ones, and the operator's own that this machine (where
    the emulated nodes live) cannot reach now. Tried once per start, in parallel, off the loop."""
    causes = dict(kubelet.unreachable_causes(args.unreachable_registry))
    tried = await asyncio.gather(*(asyncio.to_thread(kubelet.reach, r) for r in args.operator_registry))
    causes.update({r: cause for r, cause in zip(args.operator_registry, tried, strict=True) if cause is not None})
    return causes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hfwizard.sandbox.emulator", description="Run an emulated Kubernetes API on loopback."
    )
    parser.add_argument("--state", type=Path, help="state file: objects survive a restart (even SIGKILL)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", type=Path, help="write a kubeconfig here (mode 0600)")
    parser.add_argument("--context", default="sandbox")
    parser.add_argument("--version", default="v1.32.3", help="the server's gitVersion")
    parser.add_argument("--workers", type=int, default=6, help="Ready worker nodes to seed on a fresh state")
    parser.add_argument("--cpu", default="8")
    parser.add_argument("--memory", default="32Gi")
    parser.add_argument("--cloud", choices=sorted(CLOUDS), default="generic", help="whose node labels to seed")
    parser.add_argument("--gpu-nodes", type=int, default=0, help="GPU nodes (tainted nvidia.com/gpu) to seed")
    parser.add_argument(
        "--ingress-class",
        action="append",
        default=[],
        help="seed this IngressClass, as if its controller were installed (repeatable; default none)",
    )
    parser.add_argument("--ready-delay", type=float, default=0.0, help="seconds before a workload turns ready")
    parser.add_argument("--step-delay", type=float, default=0.0, help="seconds between replicas turning ready")
    parser.add_argument(
        "--unreachable-registry",
        action="append",
        default=[],
        help="image pulls from this registry host fail with ErrImagePull (repeatable)",
    )
    parser.add_argument(
        "--operator-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="a registry the operator runs (a mirror): reached for real from this machine at start; when it "
        "does not resolve or answer, pulls from it fail as a node's would (repeatable)",
    )
    parser.add_argument(
        "--blocked-egress",
        action="append",
        default=[],
        metavar="HOST[=dns|refused|timeout]",
        help="pods nobody owns (probes) cannot reach this host (or host:port); curl in them fails as named "
        "(default refused; repeatable)",
    )
    parser.add_argument(
        "--hold-clickhouse",
        action="append",
        default=[],
        metavar="GLOB",
        help="the ClickHouse operator keeps matching installations InProgress (chi/NAME, chk/NAME or NAME; repeatable)",
    )
    parser.add_argument(
        "--fail-clickhouse",
        action="append",
        default=[],
        metavar="GLOB",
        help="the ClickHouse operator aborts matching installations (repeatable)",
    )
    parser.add_argument("--no-controllers", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        parse_egress(args.blocked_egress)
    except ValueError as exc:
        parser.error(str(exc))  # exit 2 with the usage, before anything starts
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 130
    return 0
