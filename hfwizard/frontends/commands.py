"""What the headless commands do (install, resume, preflight, sandbox), over hfwizard.operations.

cli.py stays a thin shell of options; each function here returns the exit code.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from hfwizard import operations
from hfwizard.errors import BadInput, CheckFailed, ExitCode, HfwizardError
from hfwizard.events import Event, InstallFinished, PreflightFinished
from hfwizard.profile import InstallProfile


class View(Protocol):
    def show(self, event: Event) -> None: ...
    def note(self, text: str, error: bool = False) -> None: ...
    def close(self) -> None: ...


def make_view(json: bool) -> View:
    """The JSON lines writer, or the Rich renderer (imported only when a person watches)."""
    if json:
        from hfwizard.frontends.jsonview import JsonView

        return JsonView()
    from hfwizard.frontends.console import RichView

    return RichView()


async def _show_all(events: AsyncIterator[Event], view: View) -> list[Event]:
    seen: list[Event] = []
    try:
        async for event in events:
            view.show(event)
            if not seen and not gc.isenabled():
                gc.freeze()  # cli.main paused collection for the start-up, which ends here (see cli.root)
                gc.enable()
            seen.append(event)
    finally:
        view.close()
    return seen


#: Events to show just before a run's last one (InstallFinished), given its exit code: the DNS
#: hand-off after an install, the support bundle's path after a failure (hfwizard.frontends.daytwo).
type Epilogue = Callable[[int], Awaitable[list[Event]]]


async def _ending_with(events: AsyncIterator[Event], epilogue: Epilogue | None) -> AsyncIterator[Event]:
    async for event in events:
        if epilogue is not None and isinstance(event, InstallFinished):
            for extra in await epilogue(event.exit_code):
                yield extra
        yield event


def drive(run: operations.InstallRun, view: View, banner: str | None = None, epilogue: Epilogue | None = None) -> int:
    """Render an install run to its end; its exit code (a refused preflight says why on the view)."""
    if banner:
        view.note(banner)
    asyncio.run(_show_all(_ending_with(run.events(), epilogue), view))
    if run.refused is not None:
        view.note(f"hfwizard: {run.refused}", error=True)
    return run.exit_code if run.exit_code is not None else int(ExitCode.FAILED)


def cmd_install(profile_path: Path, *, state_root: Path, json: bool, yes: bool, kubeconfig: str | None,
                context: str | None, rollback_on_failure: bool, skip_preflight: bool,
                skip_checks: tuple[str, ...] = ()) -> int:
    from hfwizard.installs import PROFILE_FILE
    from hfwizard.profile_io import save_profile
    from hfwizard.state import install_dir

    loaded = operations.load(profile_path)
    profile = loaded.profile
    if profile.is_sandbox:
        raise BadInput("this profile targets the sandbox", remedy="run `hfwizard sandbox` for a rehearsal")
    from hfwizard.validate import check_inputs

    target = operations.resolve_target(profile, kubeconfig=kubeconfig, context=context)
    base_dir = profile_path.expanduser().resolve().parent
    # Every path, file and reference is checked now: bad input exits 2 before anything is changed.
    check_inputs(profile, base_dir=base_dir, kubeconfig=target.kubeconfig, state_root=state_root,
                 kubeconfig_field="--kubeconfig" if kubeconfig else "target.kubeconfig")
    idir = install_dir(state_root, profile.metadata.name)
    # The install keeps its own copy (0600): `resume` and `status` need no path to the original.
    save_profile(idir / PROFILE_FILE, profile, loaded.document)
    _confirm(profile, target, yes=yes or json)
    run = operations.InstallRun(
        profile, idir, target=target, signals=True,
        preflight_first=None if skip_preflight else operations.PreflightFirst(skip=skip_checks),
        rollback_on_failure=True if rollback_on_failure else None,
        secrets_base_dir=base_dir)
    from hfwizard.frontends.daytwo import epilogue

    return drive(run, make_view(json), epilogue=epilogue("install", idir, target, profile))


def cmd_resume(*, state_root: Path, name: str | None, json: bool, yes: bool, replan: bool,
               kubeconfig: str | None, context: str | None, rollback_on_failure: bool = False) -> int:
    from hfwizard.installs import find_install

    inst = find_install(state_root, name)
    profile = inst.load_profile().profile
    if profile.is_sandbox:
        return cmd_sandbox(state_root, json=json, profile=profile, state_dir=inst.path, replan=replan)
    from hfwizard.validate import check_kubeconfig

    target = operations.resolve_target(profile, kubeconfig=kubeconfig, context=context)
    check_kubeconfig(target.kubeconfig, field="--kubeconfig" if kubeconfig else "target.kubeconfig")
    # The preflight ran before the first attempt; a resume goes straight to the engine, which checks
    # each finished step against the cluster itself.
    run = operations.InstallRun(
        profile, inst.path, target=target,
        replan=replan, rollback_on_failure=True if rollback_on_failure else None, signals=True)
    from hfwizard.frontends.daytwo import epilogue

    return drive(run, make_view(json), epilogue=epilogue("install", inst.path, target, profile))


def cmd_sandbox(state_root: Path, *, json: bool, profile: InstallProfile | None = None,
                state_dir: Path | None = None, profile_path: Path | None = None, charts: Path | None = None,
                replan: bool = False) -> int:
    """The rehearsal (or its resume): the emulated cluster, preflight and install, rendered here.

    `profile_path`: rehearse the operator's own profile; `charts`: a mirror folder of the charts; `replan`:
    carry on with a changed profile."""
    from hfwizard.sandbox.rehearsal import BANNER

    rehearse = operations.load(profile_path).profile if profile_path is not None else None
    base_dir = profile_path.expanduser().resolve().parent if profile_path is not None else None
    run = operations.sandbox_run(state_root, profile=profile, state_dir=state_dir, signals=True,
                                 rehearse=rehearse, charts=charts, secrets_base_dir=base_dir, replan=replan)
    return drive(run, make_view(json), banner=BANNER)


def cmd_preflight(profile: InstallProfile, profile_path: Path, *, json: bool, skip: Sequence[str],
                  timeout: float | None, kubeconfig: str | None, context: str | None) -> None:
    """Run and render the preflight; raise CheckFailed (exit 1) when a check failed, BadInput (2) for a
    skip entry naming no check (before anything runs)."""
    from hfwizard.preflight import plan_preflight

    target = operations.resolve_target(profile, kubeconfig=kubeconfig, context=context)
    base_dir = profile_path.expanduser().resolve().parent
    # A bad --skip-check is bad input: refuse it before any view starts.
    kubeconfig_field = "--kubeconfig" if kubeconfig else "target.kubeconfig"
    plan_preflight(profile, operations.preflight_settings(target, skip=skip, timeout=timeout, base_dir=base_dir,
                                                          strict_inputs=True, kubeconfig_field=kubeconfig_field))
    from hfwizard import quick_exit

    quick_exit.arm()  # nothing to tear down once the report is out
    events = operations.preflight(profile, target=target, skip=skip, timeout=timeout, base_dir=base_dir,
                                  strict_inputs=True, kubeconfig_field=kubeconfig_field)
    seen = asyncio.run(_show_all(events, make_view(json)))
    failed = next((e.failed for e in reversed(seen) if isinstance(e, PreflightFinished)), 0)
    if failed:
        raise CheckFailed(f"preflight: {failed} check{'s' * (failed != 1)} failed",
                          remedy="fix what the failed checks name, then run the preflight again")


def _confirm(profile: InstallProfile, target: operations.Target, *, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise BadInput("install changes the cluster and no terminal is here to confirm it",
                       remedy="add --yes to install without asking")
    import typer

    if not typer.confirm(f"Install Highflame into namespace {profile.target.namespace} on {target.describe()}?",
                         default=False):
        raise typer.Abort()


class Outcome(HfwizardError):
    """A finished run's non-zero exit code, raised so cli.run() returns it.

    cli.run() ignores the value a command returns through typer.Exit when Typer runs with
    standalone_mode=False (Click then returns the code instead of raising), so a command that must
    end with 1, 2, 3 or 4 raises this instead.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = ExitCode(code)


def finish(code: int, *, what: str = "install", carry_on: str = "hfwizard resume") -> None:
    """Raise `Outcome` for a non-zero exit code (see Outcome for why), in the words of the run that
    ended (`what`: install, uninstall, upgrade) and the command that carries it on."""
    if code:
        messages = {1: f"the {what} failed (see above)", 2: f"the {what} was refused (see above)",
                    3: f"interrupted: run `{carry_on}` to carry on", 4: "another install holds the lock"}
        raise Outcome(code, messages.get(code, f"exit code {code}"))
