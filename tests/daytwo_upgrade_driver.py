"""Runs one upgrade (an UpgradeRun over the test plan of tests.daytwo_platform) as its own process, so
a test can SIGKILL it midway: `python -m tests.daytwo_upgrade_driver STATE_ROOT NAME [--rollback]`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from hfwizard import operations
from hfwizard.store.install_dir import InstallDir
from tests import daytwo_platform as hp


def main(argv: list[str]) -> int:
    inst = InstallDir.under(Path(argv[0]), argv[1])
    prof = inst.load_profile().profile
    failing = next((a.removeprefix("--failing=") for a in argv if a.startswith("--failing=")), None)
    run = operations.upgrade_run(prof, inst.path, hp.versioned_plan(hp.NEW, "2.0.0", failing=failing),
                                 rollback_on_failure="--rollback" in argv, signals=True,
                                 target=operations.resolve_target(prof))

    async def go() -> None:
        async for event in run.events():
            print(type(event).__name__, getattr(event, "step_id", ""), getattr(event, "message", ""), flush=True)

    asyncio.run(go())
    return run.exit_code if run.exit_code is not None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
