"""What `hfwizard install` and `hfwizard resume` do, kept out of cli.py so the CLI stays a thin shell."""

from __future__ import annotations

import sys
from pathlib import Path

from hfwizard.engine.console import RunSettings, run_install
from hfwizard.errors import BadInput, ExitCode, HfwizardError
from hfwizard.installs import PROFILE_FILE, find_install
from hfwizard.profile import InstallProfile
from hfwizard.profile_io import LoadedProfile, load_profile, save_profile
from hfwizard.state import install_dir
from hfwizard.validate import check_inputs, check_kubeconfig


def cmd_install(profile_path: Path, *, state_root: Path, json: bool, yes: bool, kubeconfig: str | None,
                context: str | None, rollback_on_failure: bool, skip_preflight: bool,
                skip_checks: tuple[str, ...] = ()) -> int:
    loaded = load_profile(profile_path)
    profile = loaded.profile
    if profile.is_sandbox:
        raise BadInput("this profile targets the sandbox", remedy="run `hfwizard sandbox` for a rehearsal")
    kc, ctx = kubeconfig or profile.target.kubeconfig, context or profile.target.context
    base_dir = profile_path.expanduser().resolve().parent
    # Every path, file and reference is checked now: bad input exits 2 before anything is changed.
    check_inputs(profile, base_dir=base_dir, kubeconfig=kc, state_root=state_root,
                 kubeconfig_field="--kubeconfig / $KUBECONFIG" if kubeconfig else "target.kubeconfig")
    idir = install_dir(state_root, profile.metadata.name)
    # The install keeps its own copy (0600): `resume` and `status` need no path to the original.
    save_profile(idir / PROFILE_FILE, profile, loaded.document)
    _confirm(profile, kc, ctx, yes=yes or json)
    return run_install(profile, idir, RunSettings(
        json=json, kubeconfig=kc, context=ctx, rollback_on_failure=True if rollback_on_failure else None,
        skip_preflight=skip_preflight, skip_checks=skip_checks,
        secrets_base_dir=base_dir))


def cmd_resume(*, state_root: Path, name: str | None, json: bool, yes: bool, replan: bool,
               kubeconfig: str | None, context: str | None, rollback_on_failure: bool = False) -> int:
    inst = find_install(state_root, name)
    loaded: LoadedProfile = inst.load_profile()
    profile = loaded.profile
    if profile.is_sandbox:
        from hfwizard.sandbox.rehearsal import run_sandbox

        return run_sandbox(state_root, json=json, profile=profile, idir=inst.path)
    kc, ctx = kubeconfig or profile.target.kubeconfig, context or profile.target.context
    check_kubeconfig(kc, field="--kubeconfig / $KUBECONFIG" if kubeconfig else "target.kubeconfig")
    # The preflight ran before the first attempt; a resume goes straight to the engine, which checks
    # each finished step against the cluster itself.
    return run_install(profile, inst.path, RunSettings(
        json=json, kubeconfig=kc, context=ctx, replan=replan,
        rollback_on_failure=True if rollback_on_failure else None, skip_preflight=True))


def _confirm(profile: InstallProfile, kubeconfig: str | None, context: str | None, *, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise BadInput("install changes the cluster and no terminal is here to confirm it",
                       remedy="add --yes to install without asking")
    import typer

    where = f"context {context}" if context else "the kubeconfig's current context"
    if not typer.confirm(f"Install Highflame into namespace {profile.target.namespace} on {where}"
                         f"{f' ({kubeconfig})' if kubeconfig else ''}?", default=False):
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


def finish(code: int) -> None:
    """Raise `Outcome` for a non-zero exit code (see Outcome for why)."""
    if code:
        messages = {1: "the install failed (see above)", 2: "the install was refused (see above)",
                    3: "interrupted: run `hfwizard resume` to carry on", 4: "another install holds the lock"}
        raise Outcome(code, messages.get(code, f"exit code {code}"))
