"""The `hfwizard` command line: the TUI by default, and headless subcommands for scripted installs.

Heavy libraries (Textual, cloud SDKs, the Kubernetes client, Helm) are imported inside the commands
that need them, so `hfwizard --help` starts fast.
"""

import functools
import gc
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main

from hfwizard.errors import BadInput, ExitCode, HfwizardError

# pydantic looks for plugins in every installed distribution's entry points the first time it builds a
# validator (0.01-0.02 s of each start); hfwizard's models use none. An operator's own setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

app = typer.Typer(
    name="hfwizard",
    help="Install the Highflame platform on your Kubernetes cluster (AWS, GCP, Azure or an existing one).\n\n"
         "Run with no command for the guided wizard.",
    epilog="\b\nExamples:\n"
           "  hfwizard                                    the guided wizard\n"
           "  hfwizard --plain                            the same questions as plain prompts\n"
           "  hfwizard preflight --profile prod.yaml      check every requirement, change nothing\n"
           "  hfwizard install --profile prod.yaml --yes  headless install from a saved profile\n"
           "  hfwizard resume                             carry on after an interruption\n"
           "  hfwizard render --profile prod.yaml --out values/\n"
           "  hfwizard sandbox                            rehearse the whole install locally\n"
           "  hfwizard status prod --watch                the platform live, and the DNS records\n"
           "  hfwizard upgrade prod --platform 2026.02    upgrade, showing what changes first\n"
           "  hfwizard uninstall prod                     remove the releases, keep the data\n"
           "  hfwizard support-bundle prod                a masked archive for support\n"
           "\n\b\nExit codes: 0 done, 1 failed, 2 bad input, 3 interrupted (resumable),\n"
           "            4 another install holds the lock.",
    add_completion=False,
    invoke_without_command=True,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


@dataclass
class Options:
    """Options common to the commands, resolved once."""

    kubeconfig: Path | None = None
    context: str | None = None
    state_dir: Path | None = None
    json: bool = False
    yes: bool = False
    plain: bool = False

    @property
    def state_root(self) -> Path:
        from hfwizard.state import default_root

        return self.state_dir if self.state_dir is not None else default_root()


# No envvar: $KUBECONFIG is the Kubernetes client's default, below a kubeconfig the profile names
# (hfwizard.operations.resolve_target decides that once, for every command).
KubeconfigOpt = Annotated[Path | None, typer.Option(
    "--kubeconfig", help="kubeconfig file to use (default: the profile's, else $KUBECONFIG or ~/.kube/config).")]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context to use.")]
StateDirOpt = Annotated[Path | None, typer.Option(
    "--state-dir", envvar="HFWIZARD_STATE_DIR",
    help="Where installs keep their profile, journal and logs (default: the user state directory).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON event per line instead of a live view.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
PlainOpt = Annotated[bool, typer.Option("--plain", help="Plain prompts and lines instead of the full-screen UI.")]
ProfileOpt = Annotated[Path, typer.Option("--profile", "-p", help="Install profile (YAML).",
                                          dir_okay=False, show_default=False)]


def _opts(ctx: typer.Context, **given: Any) -> Options:
    """Merge a subcommand's options over the ones given before it (`hfwizard --state-dir X install`)."""
    base: Options = ctx.obj if isinstance(ctx.obj, Options) else Options()
    merged = Options(**{k: v for k, v in vars(base).items()})
    for k, v in given.items():
        if v not in (None, False):
            setattr(merged, k, v)
    return merged


@app.callback()
def root(
    ctx: typer.Context,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    state_dir: StateDirOpt = None,
    plain: PlainOpt = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        from hfwizard import __version__

        typer.echo(f"hfwizard {__version__}")
        raise typer.Exit(0)
    ctx.obj = Options(kubeconfig=kubeconfig, context=context, state_dir=state_dir, plain=plain)
    if ctx.invoked_subcommand != "preflight" and not gc.isenabled():
        # The start-up is over (see main); the preflight's ends with its first event. What it made stays
        # out of later collections (frozen), which would otherwise all scan it once.
        gc.freeze()
        gc.enable()
    if ctx.invoked_subcommand is None:
        opts: Options = ctx.obj
        if opts.plain:
            from hfwizard.frontends.plain import run_plain

            raise typer.Exit(run_plain(opts.state_root))
        # Textual and the screens are imported only here: the subcommands never pay for them.
        from hfwizard.screens.app import WizardApp

        wizard = WizardApp(opts.state_root)
        code = wizard.run() or 0
        day_two = getattr(wizard, "day_two", None)  # the Welcome screen's Upgrade / Uninstall
        if day_two is not None:
            code = _run_day_two(opts, *day_two)
        raise typer.Exit(code)


@app.command()
def install(
    ctx: typer.Context,
    profile: ProfileOpt,
    yes: YesOpt = False,
    json_: JsonOpt = False,
    plain: PlainOpt = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    state_dir: StateDirOpt = None,
    rollback_on_failure: Annotated[bool, typer.Option(
        "--rollback-on-failure", help="Roll a release back when its step fails.")] = False,
    skip_preflight: Annotated[bool, typer.Option("--skip-preflight", help="Do not run the checks first.")] = False,
    skip_check: Annotated[list[str] | None, typer.Option(
        "--skip-check", metavar="ID", help="Skip a check (or a group: postgres); repeatable.")] = None,
) -> None:
    """Check every requirement, then install the platform from a profile.

    Example: hfwizard install --profile prod.yaml --yes --json
    """
    opts = _opts(ctx, yes=yes, json=json_, plain=plain, kubeconfig=kubeconfig, context=context,
                 state_dir=state_dir)
    from hfwizard.frontends.commands import cmd_install, finish

    code = cmd_install(profile, state_root=opts.state_root, json=opts.json, yes=opts.yes,
                       kubeconfig=str(opts.kubeconfig) if opts.kubeconfig else None, context=opts.context,
                       rollback_on_failure=rollback_on_failure, skip_preflight=skip_preflight,
                       skip_checks=tuple(skip_check or ()))
    finish(code)


@app.command()
def resume(
    ctx: typer.Context,
    yes: YesOpt = False,
    json_: JsonOpt = False,
    replan: Annotated[bool, typer.Option("--replan", help="Accept a profile changed since the interruption.")] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    state_dir: StateDirOpt = None,
    name: Annotated[str | None, typer.Option("--install", help="Which saved install (when several).")] = None,
    rollback_on_failure: Annotated[bool, typer.Option(
        "--rollback-on-failure", help="Roll a release back when its step fails.")] = False,
) -> None:
    """Carry on an interrupted install from where it stopped.

    Example: hfwizard resume
    """
    opts = _opts(ctx, yes=yes, json=json_, kubeconfig=kubeconfig, context=context, state_dir=state_dir)
    from hfwizard.frontends.commands import cmd_resume, finish

    code = cmd_resume(state_root=opts.state_root, name=name, json=opts.json, yes=opts.yes, replan=replan,
                      kubeconfig=str(opts.kubeconfig) if opts.kubeconfig else None, context=opts.context,
                      rollback_on_failure=rollback_on_failure)
    finish(code)


@app.command()
def preflight(
    ctx: typer.Context,
    profile: ProfileOpt,
    json_: JsonOpt = False,
    skip_check: Annotated[list[str] | None, typer.Option(
        "--skip-check", metavar="ID", help="Skip a check (or a group: postgres); repeatable.")] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0.1, max=600, help="Seconds each check may take (default: the profile's).")] = None,
    cluster_outbound: Annotated[bool | None, typer.Option(
        "--cluster-outbound/--no-cluster-outbound", show_default=False,
        help="Also check outbound to the registry and Clerk from inside the cluster: starts one short-lived "
             "pod (curl) in the install's namespace, deleted afterwards. Default: the profile's "
             "preflight.clusterOutbound, off unless set.")] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Check every requirement of a profile against the real cluster and services; change nothing
    (unless --cluster-outbound: one probe pod, deleted afterwards).

    Exit 0 when nothing failed (warnings allowed), 1 when a check failed, 2 for bad input.

    Example: hfwizard preflight --profile prod.yaml --json --skip-check redis/memory
    """
    opts = _opts(ctx, json=json_, kubeconfig=kubeconfig, context=context)
    loaded = _load(profile, quiet=opts.json)
    if cluster_outbound is not None:
        loaded.profile.preflight.cluster_outbound = cluster_outbound  # this run only; nothing is written
    from hfwizard.frontends.commands import cmd_preflight

    # A failed check raises CheckFailed, not typer.Exit: run() maps it to exit 1 (click swallows Exit
    # codes here).
    cmd_preflight(loaded.profile, profile, json=opts.json, skip=skip_check or (), timeout=timeout,
                  kubeconfig=str(opts.kubeconfig) if opts.kubeconfig else None, context=opts.context)


@app.command()
def render(
    ctx: typer.Context,
    profile: ProfileOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the values files into.",
                                      file_okay=False, show_default=False)],
    json_: JsonOpt = False,
) -> None:
    """Write the Helm values each release would get, and the Secrets it would create (as references).

    Example: hfwizard render --profile prod.yaml --out values/
    """
    opts = _opts(ctx, json=json_)
    loaded = _load(profile, quiet=opts.json)
    from hfwizard.frontends.jsonview import write
    from hfwizard.render import render_values

    for path in render_values(loaded.profile, out):
        if opts.json:
            write({"event": "file_written", "path": str(path)})
        else:
            typer.echo(f"wrote {path}")
    if opts.json:
        write({"event": "done", "status": "ok"})


@app.command()
def export(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: standard output).",
                                             dir_okay=False)] = None,
    profile: Annotated[Path | None, typer.Option("--profile", "-p", help="Export this profile file "
                                                 "(migrated and normalised) instead of a saved install's.",
                                                 dir_okay=False)] = None,
    name: Annotated[str | None, typer.Option("--install", help="Which saved install (when several).")] = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Write a profile with secret references only, ready to replay headless.

    Examples: hfwizard export --out prod.yaml   |   hfwizard export --profile old.yaml --out new.yaml
    """
    opts = _opts(ctx, state_dir=state_dir)
    from hfwizard import operations

    loaded = _load(profile) if profile is not None else operations.saved_profile(opts.state_root, name)
    written = operations.export_profile(loaded, out)
    if isinstance(written, str):
        sys.stdout.write(written)
    else:
        typer.echo(f"wrote {written}", err=True)


@app.command()
def status(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="An install's name: its platform, live from the cluster.",
                                               show_default=False)] = None,
    json_: JsonOpt = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.5, help="Seconds between refreshes.")] = 2.0,
    nameserver: Annotated[list[str] | None, typer.Option(
        "--nameserver", metavar="IP[:PORT]", help="Check the DNS records against this server; repeatable.")] = None,
    no_dns: Annotated[bool, typer.Option("--no-dns", help="Do not check the DNS records.")] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Show the installs kept in the state directory; with NAME, that install's platform live: every
    service's ready replicas, image, chart and last warning, ClickHouse, ingress hosts, load balancer
    and whether the DNS records resolve there.

    \b
    Examples:
      hfwizard status                                   the installs kept here
      hfwizard status prod --watch                      refresh every 2 s until Ctrl-C
      hfwizard status prod --json                       one JSON object
      hfwizard status prod --nameserver 10.0.0.2        check the DNS records against that server

    Exit 2 when there is no such install or its kubeconfig/context cannot be used, 1 when the cluster
    does not answer (a --watch keeps looking).
    """
    opts = _opts(ctx, json=json_, state_dir=state_dir, kubeconfig=kubeconfig, context=context)
    if name is not None:
        from hfwizard.frontends.daytwo import cmd_status

        cmd_status(opts.state_root, name, json=opts.json, watch=watch, interval=interval, servers=nameserver or (),
                   check_dns=not no_dns, kubeconfig=str(opts.kubeconfig) if opts.kubeconfig else None,
                   context=opts.context)
        return
    from hfwizard.installs import list_installs

    found = list_installs(opts.state_root)
    if opts.json:
        from hfwizard.frontends.jsonview import write

        for inst in found:
            write({"event": "install", **inst.summary()})
        return
    if not found:
        typer.echo(f"no installs under {opts.state_root}\n"
                   "  -> start one with `hfwizard` (the wizard) or `hfwizard install --profile FILE`, rehearse with "
                   "`hfwizard sandbox`; an install made elsewhere: add --state-dir DIR (or set HFWIZARD_STATE_DIR)")
        return
    for inst in found:
        s = inst.summary()
        typer.echo(f"{s['name']:<24} {s['state']:<12} {s['path']}")


@app.command("support-bundle")
def support_bundle(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The install's name.", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Archive to write (default: in the install's "
                                             "folder).", dir_okay=False)] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Write a support archive (journal, logs, Helm history, pods, events, container log tails) with
    every secret masked.

    \b
    Examples:
      hfwizard support-bundle prod                      under the install's folder (support/)
      hfwizard support-bundle prod --out prod-support.tar.gz

    When the cluster does not answer, the archive still holds the install's own files, and the command
    exits 1 saying what to do (2 for no such install or an unusable kubeconfig/context).
    """
    opts = _opts(ctx, state_dir=state_dir, kubeconfig=kubeconfig, context=context)
    from hfwizard.frontends.commands import finish
    from hfwizard.frontends.daytwo import cmd_support_bundle

    finish(cmd_support_bundle(opts.state_root, name, out=out, context=opts.context,
                              kubeconfig=str(opts.kubeconfig) if opts.kubeconfig else None), what="support bundle")


@app.command()
def uninstall(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The install's name.", show_default=False)],
    delete_data: Annotated[bool, typer.Option(
        "--delete-data", help="Also delete the PersistentVolumeClaims and Secrets (asks for the name).")] = False,
    confirm: Annotated[str | None, typer.Option(
        "--confirm", metavar="NAME", help="The install's name, typed ahead for --delete-data (headless).")] = None,
    yes: YesOpt = False,
    json_: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Remove the platform's releases in reverse order, keeping its data unless --delete-data.

    Run it again after an interruption: it carries on. Refused (exit 4) while an install runs.

    Example: hfwizard uninstall prod --yes
    """
    opts = _opts(ctx, yes=yes, json=json_, state_dir=state_dir, kubeconfig=kubeconfig, context=context)
    from hfwizard.frontends.commands import finish
    from hfwizard.frontends.daytwo import cmd_uninstall

    finish(cmd_uninstall(opts.state_root, name, json=opts.json, yes=opts.yes, delete_data=delete_data,
                         confirm=confirm, kubeconfig=str(opts.kubeconfig) if opts.kubeconfig else None,
                         context=opts.context), what="uninstall", carry_on=f"hfwizard uninstall {name}")


@app.command()
def upgrade(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The install's name.", show_default=False)],
    platform: Annotated[str | None, typer.Option(
        "--platform", metavar="VERSION", help="The Highflame release to upgrade to (default: the profile's).")] = None,
    profile: Annotated[Path | None, typer.Option("--profile", "-p", help="Upgrade to this profile's answers.",
                                                 dir_okay=False)] = None,
    rollback_on_failure: Annotated[bool, typer.Option(
        "--rollback-on-failure", help="On failure, put back the releases and Secrets this upgrade changed "
        "and remove the ones it added.")] = False,
    yes: YesOpt = False,
    json_: JsonOpt = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Show what changes per service (chart, image tag, values), then upgrade in dependency order.

    Run it again after an interruption: it carries on. A failure never uninstalls anything.

    Example: hfwizard upgrade prod --platform 2026.02 --rollback-on-failure
    """
    opts = _opts(ctx, yes=yes, json=json_, state_dir=state_dir, kubeconfig=kubeconfig, context=context)
    from hfwizard.frontends.commands import finish
    from hfwizard.frontends.daytwo import cmd_upgrade

    finish(cmd_upgrade(opts.state_root, name, platform=platform, profile_path=profile, json=opts.json,
                       yes=opts.yes, rollback_on_failure=rollback_on_failure, context=opts.context,
                       kubeconfig=str(opts.kubeconfig) if opts.kubeconfig else None),
           what="upgrade", carry_on=f"hfwizard upgrade {name}")


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: standard output).",
                                             dir_okay=False)] = None,
) -> None:
    """Print the profile's JSON Schema (for editors and CI validation).

    Example: hfwizard schema --out hfwizard-profile.schema.json
    """
    from hfwizard.profile import InstallProfile
    from hfwizard.state import atomic_write

    text = json.dumps(InstallProfile.model_json_schema(by_alias=True, mode="validation"), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write(out, text)
        typer.echo(f"wrote {out}", err=True)


@app.command()
def sandbox(
    ctx: typer.Context,
    json_: JsonOpt = False,
    yes: YesOpt = False,
    state_dir: StateDirOpt = None,
    profile: Annotated[Path | None, typer.Option("--profile", help="rehearse this profile (its cloud "
                                                 "played by the emulator); default: the bundled one")] = None,
    charts: Annotated[Path | None, typer.Option("--charts", help="mirror folder of the charts (index.yaml "
                                                "and tarballs); default: the cache, else the repository")] = None,
) -> None:
    """Rehearse the whole install of the real platform on an emulated cluster: no cloud, no real cluster.

    Example: hfwizard sandbox --json --charts ./highflame-charts
    """
    opts = _opts(ctx, json=json_, yes=yes, state_dir=state_dir)
    from hfwizard.frontends.commands import cmd_sandbox, finish

    finish(cmd_sandbox(opts.state_root, json=opts.json, profile_path=profile, charts=charts))


charts_app = typer.Typer(help="The platform's charts: `hfwizard charts pull --to DIR` writes a mirror folder.",
                         no_args_is_help=True)
app.add_typer(charts_app, name="charts")


@charts_app.command("pull")
def charts_pull(
    to: Annotated[Path, typer.Option("--to", help="folder to write (created; charts already there are kept)")],
    profile: Annotated[Path | None, typer.Option("--profile", help="take platform.version and "
                                                 "charts.repository from this profile")] = None,
    repository: Annotated[str | None, typer.Option("--repository", help="chart repository URL, "
                                                   "folder or oci:// (default: the profile's or Highflame's)")] = None,
) -> None:
    """Write a mirror folder (chart tarballs and index.yaml) for air-gapped sites: install with charts.mirror.

    Example: hfwizard charts pull --to ./highflame-charts --profile prod.yaml
    """
    import tempfile

    from hfwizard.platform.catalog import load_catalog
    from hfwizard.platform.charts import ChartSource, operator_source, pull_to
    from hfwizard.platform.settings import HIGHFLAME_CHARTS

    loaded = _load(profile) if profile is not None else None
    version = loaded.profile.platform.version if loaded else None
    location = repository or (loaded.profile.charts.repository if loaded else HIGHFLAME_CHARTS)
    catalog = load_catalog(version)
    with tempfile.TemporaryDirectory() as tmp:
        source = ChartSource(location, Path(tmp))
        # The operator's chart comes from the same place when that is a folder; else from its own repository.
        same = source.kind in ("mirror", "local") or repository
        index = pull_to(to, catalog, source, source if same else operator_source(catalog, None, Path(tmp)))
    typer.echo(f"wrote {index} (platform {catalog.platform})", err=True)


def _run_day_two(opts: Options, action: str, name: str) -> int:
    """Upgrade or uninstall chosen on the wizard's Welcome screen, run in the terminal it left."""
    from hfwizard.frontends.daytwo import cmd_uninstall, cmd_upgrade

    kubeconfig = str(opts.kubeconfig) if opts.kubeconfig else None
    try:
        if action == "upgrade":
            return cmd_upgrade(opts.state_root, name, platform=None, profile_path=None, json=False, yes=False,
                               rollback_on_failure=False, kubeconfig=kubeconfig, context=opts.context)
        return cmd_uninstall(opts.state_root, name, json=False, yes=False, delete_data=False, confirm=None,
                             kubeconfig=kubeconfig, context=opts.context)
    except KeyboardInterrupt:
        typer.echo("nothing was changed", err=True)
        return ExitCode.OK


def _load(path: Path, quiet: bool = False) -> Any:
    from hfwizard import operations

    loaded = operations.load(path)
    if not quiet:
        for note in loaded.notes:
            typer.echo(f"note: {note}", err=True)
    return loaded


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every outcome into the documented exit code."""
    # Start-up makes hundreds of thousands of objects that live until exit (modules, classes,
    # validators): collecting garbage among them is wasted work (3-5% of a preflight's start). Collection
    # resumes when the command starts its work (root(), and the preflight's first event).
    gc.disable()
    code = run(argv)
    from hfwizard.quick_exit import leave

    leave(code)


@functools.cache
def _command() -> Any:
    # Typer builds the click command from the functions above on every call of `app`: built once, it serves
    # a caller running many commands in one process (the profile fuzzing) without that cost each time.
    return typer.main.get_command(app)


def run(argv: list[str] | None = None) -> int:
    try:
        # Without standalone mode, a `typer.Exit(n)` inside a command comes back as the return value.
        rv = _command().main(args=argv, standalone_mode=False, prog_name="hfwizard")
        return rv if isinstance(rv, int) else ExitCode.OK
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        typer.echo("interrupted", err=True)
        return ExitCode.INTERRUPTED
    except typer.TyperException as exc:
        # Usage errors (unknown command or option, a missing --profile, a bad value): exit 2.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"hfwizard: {exc}", err=True)
        return ExitCode.BAD_INPUT
    except HfwizardError as exc:
        typer.echo(f"hfwizard: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `hfwizard schema | head`: the reader left; nothing is wrong with us.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except Exception as exc:  # a bug: say where the details are, never dump locals on screen
        return _internal_error(exc)


def _internal_error(exc: BaseException) -> int:
    import tempfile
    import traceback

    from hfwizard.state import atomic_write

    path = Path(tempfile.gettempdir()) / f"hfwizard-crash-{os.getpid()}.txt"
    try:
        atomic_write(path, "".join(traceback.format_exception(exc)))
        where = f"details in {path}"
    except OSError:
        where = "no crash file could be written"
    typer.echo(f"hfwizard: internal error ({type(exc).__name__}); {where}. Please report it.", err=True)
    return ExitCode.FAILED


__all__ = ["BadInput", "app", "main", "run"]
