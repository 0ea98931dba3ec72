"""The day-two commands (status, support-bundle, uninstall, upgrade) over hfwizard.operations."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hfwizard import operations
from hfwizard.errors import BadInput, ExitCode, Failed


def _install(state_root: Path, name: str) -> Any:
    from hfwizard.installs import find_install

    return find_install(state_root, name)


def _target(inst: Any, kubeconfig: str | None, context: str | None) -> tuple[Any, operations.Target]:
    profile = inst.load_profile().profile
    return profile, operations.resolve_target(profile, kubeconfig=kubeconfig, context=context)


def _reachable(profile: Any, target: operations.Target) -> None:
    """Before a run that changes the cluster: its kubeconfig usable (else exit 2) and its API answering
    (else exit 1), each named with what to do. A sandbox's emulator starts with the run itself."""
    from hfwizard.daytwo.reach import reach

    if not profile.is_sandbox:
        asyncio.run(reach(target.kubeconfig, target.context))


def cmd_status(state_root: Path, name: str, *, json: bool, watch: bool, interval: float, servers: Sequence[str],
               check_dns: bool, kubeconfig: str | None, context: str | None) -> int:
    """Live status of one install's platform; with `watch`, again every `interval` seconds until Ctrl-C."""
    inst = _install(state_root, name)
    profile, target = _target(inst, kubeconfig, context)
    ns = operations.nameservers(servers)
    try:
        while True:
            try:
                report = asyncio.run(operations.platform_status(inst.path, target=target, servers=ns,
                                                                check_dns=check_dns, profile=profile))
            except Failed as exc:
                if not watch:
                    raise  # exit 1, naming the server and what to do
                _show_unreached(exc, json=json)  # a watch rides out a dropped VPN: it looks again
            else:
                _show_status(report, json=json, watch=watch)
            if not watch:
                return int(ExitCode.OK)
            time.sleep(interval)
    except KeyboardInterrupt:
        return int(ExitCode.OK)  # leaving a watch is how it ends


def _show_unreached(exc: Failed, *, json: bool) -> None:
    if json:
        from hfwizard.frontends.jsonview import write

        write({"event": "status_failed", "message": exc.message, "remedy": exc.remedy})
        return
    print(f"{time.strftime('%H:%M:%S')} {exc}", flush=True)


def _show_status(report: operations.StatusReport, *, json: bool, watch: bool) -> None:
    if json:
        from hfwizard.frontends.jsonview import write

        write({"event": "status", **report.to_json()})
        return
    if watch and sys.stdout.isatty():
        sys.stdout.write("\x1b[2J\x1b[H")  # a fresh screen per refresh, as `watch` does
    st = report.status
    print(f"namespace {st.namespace}, read in {st.seconds:.2f}s at {time.strftime('%H:%M:%S')}")
    for line in [*st.lines(), *report.dns]:
        print(line)
    sys.stdout.flush()


def cmd_support_bundle(state_root: Path, name: str, *, out: Path | None, kubeconfig: str | None,
                       context: str | None) -> int:
    inst = _install(state_root, name)
    _, target = _target(inst, kubeconfig, context)
    path, line = asyncio.run(operations.support_bundle(inst.path, target=target, out=out, reason="asked for"))
    print(line)
    return int(ExitCode.OK if path is not None else ExitCode.FAILED)


def say(json: bool, event: str, line: str) -> None:
    """One line for a person, or one JSON event (stdout stays JSON lines with --json)."""
    if json:
        from hfwizard.frontends.jsonview import write

        write({"event": event, "message": line})
    else:
        print(line, flush=True)


def epilogue(kind: str, install: Path, target: operations.Target | None, profile: Any) -> Any:
    """What a run shows before its last event: after an install the DNS records to create (and whether
    they resolve yet), after an uninstall what was kept, after any failure the support bundle's path."""
    from hfwizard.events import Event, LogLine

    async def lines(code: int) -> list[Event]:
        if profile.is_sandbox:
            return []  # the rehearsal's emulator belongs to the run still ending: no second one beside it
        if code == ExitCode.OK and kind == "install":
            dns = await operations.after_install_dns(install, target=target, servers=operations.nameservers())
            return [LogLine("dns", line) for line in dns]
        if code == ExitCode.OK and kind.startswith("uninstall"):
            from hfwizard.daytwo.uninstall import kept_data_lines

            kept = kept_data_lines(profile.target.namespace, deleted=kind == "uninstall-data",
                                   has_backup_bucket=profile.clickhouse.backup.bucket is not None)
            return [LogLine("uninstall", line) for line in kept]
        if code == ExitCode.FAILED:
            reason = f"{kind.split('-')[0]} failed"
            _, line = await operations.support_bundle(install, target=target, reason=reason, after_failure=True)
            return [LogLine("support-bundle", line, level="warning")]
        return []

    return lines


def _typed_confirmation(name: str, confirm: str | None) -> None:
    """--delete-data needs the install's name typed (or given as --confirm NAME when headless)."""
    if confirm is None:
        if not sys.stdin.isatty():
            raise BadInput("--delete-data needs the install's name typed to confirm, and no terminal is here",
                           remedy=f"add --confirm {name} to delete the data headless")
        print(f"This deletes the PersistentVolumeClaims (ClickHouse's data) and the Secrets of install {name}.")
        confirm = input(f"Type the install's name ({name}) to confirm: ").strip()
    if confirm != name:
        raise BadInput(f"the name typed ({confirm!r}) is not the install's ({name!r}); nothing was deleted",
                       remedy=f"type {name} exactly, or leave out --delete-data to keep the data")


def cmd_uninstall(state_root: Path, name: str, *, json: bool, yes: bool, delete_data: bool, confirm: str | None,
                  kubeconfig: str | None, context: str | None) -> int:
    from hfwizard.frontends.commands import drive, make_view

    inst = _install(state_root, name)
    profile, target = _target(inst, kubeconfig, context)
    _reachable(profile, target)
    if delete_data:
        _typed_confirmation(inst.name, confirm)
    elif not (yes or json):
        _confirm(f"Remove every Highflame release of install {inst.name} from namespace "
                 f"{profile.target.namespace} on {target.describe()} (data kept)?")
    run = operations.uninstall_run(inst.path, delete_data=delete_data, target=target, signals=True)
    return drive(run, make_view(json), epilogue=epilogue("uninstall-data" if delete_data else "uninstall",
                                                         inst.path, target, profile))


def cmd_upgrade(state_root: Path, name: str, *, platform: str | None, profile_path: Path | None, json: bool,
                yes: bool, rollback_on_failure: bool, kubeconfig: str | None, context: str | None) -> int:
    from hfwizard.engine.plan import build_plan
    from hfwizard.frontends.commands import drive, make_view
    from hfwizard.profile_io import save_profile

    inst = _install(state_root, name)
    if inst.state() == "new":
        raise BadInput(f"install {inst.name!r} was never installed: there is nothing to upgrade",
                       remedy="install it first (`hfwizard install` or the wizard)")
    current = inst.load_profile()
    loaded = operations.load(profile_path) if profile_path is not None else current
    new = loaded.profile.model_copy(deep=True)
    if platform is not None:
        _set_platform(new, platform)
    target = operations.resolve_target(new, kubeconfig=kubeconfig, context=context)
    _reachable(new, target)
    base = profile_path.expanduser().resolve().parent if profile_path is not None else None
    plan = build_plan(new)
    for line in ["Upgrade plan:", *operations.upgrade_changes(inst.path, new, plan, target=target,
                                                              secrets_base_dir=base)]:
        say(json, "upgrade_plan", line)
    if not (yes or json):
        _confirm(f"Upgrade install {inst.name} on {target.describe()}?")
    if not inst.previous_profile_path.exists():
        # Kept until the upgrade ends: a rollback puts it back, so `resume` and `status` match the cluster.
        save_profile(inst.previous_profile_path, current.profile, current.document)
    save_profile(inst.profile_path, new, loaded.document if profile_path is not None else None)
    run = operations.upgrade_run(new, inst.path, plan, rollback_on_failure=rollback_on_failure, target=target,
                                 signals=True, secrets_base_dir=base)
    code = drive(run, make_view(json), epilogue=epilogue("upgrade", inst.path, target, new))
    if code == ExitCode.OK or run.rolled_back or code == ExitCode.BAD_INPUT:
        # Refused (an unfinished run with other answers) or rolled back: the cluster has the old answers.
        _settle_profiles(inst, rolled_back=code != ExitCode.OK)
    return code


def _settle_profiles(inst: Any, *, rolled_back: bool) -> None:
    if rolled_back:
        inst.previous_profile_path.replace(inst.profile_path)
    else:
        inst.previous_profile_path.unlink(missing_ok=True)


def _set_platform(profile: Any, version: str) -> None:
    from hfwizard.platform.catalog import available_versions

    known = available_versions()
    if version not in known:
        raise BadInput(f"--platform {version}: no such Highflame release in this hfwizard",
                       remedy=f"choose one of {', '.join(known)}")
    profile.platform.version = version


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise BadInput("this changes the cluster and no terminal is here to confirm it",
                       remedy="add --yes to go ahead without asking")
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise KeyboardInterrupt
