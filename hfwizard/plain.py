"""Plain prompt mode (`hfwizard --plain`): the wizard's questions as questionary prompts, events as lines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import questionary

from hfwizard import adapters
from hfwizard.draft import STEPS, Draft, effective, from_text, problems, step_problems
from hfwizard.errors import ExitCode, HfwizardError
from hfwizard.events import (
    CheckFinished,
    Event,
    InstallFinished,
    LogLine,
    PreflightFinished,
    StepFailed,
    StepFinished,
    StepStarted,
)
from hfwizard.profile import MODULE_TITLES
from hfwizard.profile_io import dump_profile, preset_names


@dataclass(frozen=True)
class Question:
    path: str
    prompt: str
    kind: str = "str"  # str, int, float, list, ref, bool, choice
    choices: tuple[str, ...] = ()
    when: Callable[[Draft], bool] = lambda d: True


def _cloud(*clouds: str) -> Callable[[Draft], bool]:
    return lambda d: effective(d.data, "target.cloud") in clouds


NOT_SANDBOX = _cloud("aws", "gcp", "azure", "existing")

# The same questions as the screens, step by step (hfwizard.draft.STEPS).
QUESTIONS: dict[str, list[Question]] = {
    "target": [
        Question("target.cloud", "Where will Highflame run?", "choice",
                 ("aws", "gcp", "azure", "existing", "sandbox")),
        Question("target.namespace", "Namespace"),
        Question("target.release", "Helm release name"),
    ],
    "credentials": [
        Question("credentials.aws.profile", "AWS profile (empty: environment)", when=_cloud("aws")),
        Question("credentials.gcp.project", "GCP project id", when=_cloud("gcp")),
        Question("credentials.azure.subscriptionId", "Azure subscription id", when=_cloud("azure")),
    ],
    "cluster": [
        Question("target.region", "Region", when=_cloud("aws", "gcp", "azure")),
        Question("target.cluster", "Cluster name", when=_cloud("aws", "gcp", "azure")),
        Question("target.kubeconfig", "Kubeconfig file (empty: default)", when=_cloud("existing")),
        Question("target.context", "Context (empty: current)", when=_cloud("existing")),
    ],
    "data": [
        Question("postgres.host", "PostgreSQL host", when=NOT_SANDBOX),
        Question("postgres.port", "PostgreSQL port", "int", when=NOT_SANDBOX),
        Question("postgres.password", "PostgreSQL password reference (env:NAME, file:PATH)", "ref",
                 when=NOT_SANDBOX),
        Question("redis.endpoints", "Redis endpoints (host:port, comma separated)", "list", when=NOT_SANDBOX),
        Question("redis.password", "Redis AUTH reference (empty: none)", "ref", when=NOT_SANDBOX),
        Question("clickhouse.backup.bucket", "Backup bucket", when=NOT_SANDBOX),
    ],
    "sizing": [
        Question("sizing.preset", "Sizing preset", "choice", tuple(preset_names())),
        Question("sizing.nodes.count", "Worker nodes (at least 6)", "int"),
        Question("sizing.nodes.cores", "Cores per node (8–16)", "int"),
        Question("sizing.nodes.memoryGiB", "Memory per node in GiB (16–32)", "int"),
        Question("sizing.redis.memoryGiBPerNode", "Memory per Redis node in GiB (at least 4)", "float"),
    ],
    "modules": [Question(f"modules.{name.value}.enabled", f"Enable {title}?", "bool")
                for name, title in MODULE_TITLES.items()],
    "clerk": [
        Question("clerk.publishableKey", "Clerk publishable key (pk_live_… / pk_test_…)"),
        Question("clerk.secretKey", "Clerk secret key reference (env:NAME, file:PATH; empty: later)", "ref"),
    ],
    "ingress": [
        Question("ingress.domain", "Public domain of the platform"),
        Question("ingress.className", "Ingress class"),
        Question("ingress.tls.enabled", "Serve TLS?", "bool"),
        Question("ingress.tls.existingSecret", "Existing TLS Secret (empty: none)",
                 when=lambda d: bool(effective(d.data, "ingress.tls.enabled"))),
    ],
    "review": [],
}


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _reason(draft: Draft, step: str, path: str, value: Any) -> str | None:
    """The model's verdict on `value` at `path`: the format_errors line, or None when it is good."""
    old = draft.get(path)
    draft.set(path, value)
    try:
        found = [p for p in step_problems(draft.data, step)
                 if p.path == path or p.path.startswith((path + ".", path + "["))]
    finally:
        draft.set(path, old)
    return found[0].line if found else None


def ask(draft: Draft, step: str, q: Question) -> None:
    current = effective(draft.data, q.path)
    if q.kind == "choice":
        default = current if current in q.choices else q.choices[0]
        answer: Any = questionary.select(q.prompt, choices=list(q.choices), default=default).unsafe_ask()
    elif q.kind == "bool":
        answer = questionary.confirm(q.prompt, default=bool(current)).unsafe_ask()
    else:
        def check(text: str) -> bool | str:
            return _reason(draft, step, q.path, from_text(q.kind, text)) or True

        answer = from_text(q.kind, questionary.text(q.prompt, default=_show(current), validate=check).unsafe_ask())
    draft.set(q.path, answer)
    draft.save()


def run_questions(draft: Draft) -> None:
    start = STEPS.index(draft.step) if draft.step in STEPS else 0
    for step in STEPS[start:]:
        draft.save_step(step)
        if step == "sizing":
            # A preset first; the sizes it sets become the defaults of the questions after it.
            ask(draft, step, QUESTIONS[step][0])
            questions = QUESTIONS[step][1:]
        else:
            questions = QUESTIONS[step]
        for q in questions:
            if q.when(draft):
                ask(draft, step, q)
        left = step_problems(draft.data, step)
        for p in left:  # a rule across fields (e.g. TLS sources): say it, then ask the step again
            print(f"  ✗ {p.line}")
        if left and step != "review":
            return run_questions(draft)


def print_event(event: Event) -> None:
    if isinstance(event, CheckFinished):
        r = event.result
        mark = {"pass": "ok  ", "warn": "warn", "fail": "FAIL", "skipped": "skip"}[r.status.value]
        print(f"[{mark}] {r.id}: {r.finding}" + (f"\n       -> {r.remedy}" if r.remedy and mark == "FAIL" else ""))
    elif isinstance(event, PreflightFinished):
        print(f"preflight: {event.passed} passed, {event.warned} warnings, {event.failed} failed, "
              f"{event.skipped} skipped")
    elif isinstance(event, StepStarted):
        print(f"==> {event.step_id}: {event.title}")
    elif isinstance(event, LogLine):
        print(f"    {event.line}")
    elif isinstance(event, StepFinished):
        print(f"ok  {event.step_id} {event.detail}".rstrip())
    elif isinstance(event, StepFailed):
        print(f"FAIL {event.step_id}: {event.error}" + (f"\n     -> {event.remedy}" if event.remedy else ""))
    elif isinstance(event, InstallFinished):
        print(f"install {event.status}: {event.message}".rstrip())


async def _consume(stream: Any) -> list[Event]:
    seen: list[Event] = []
    async for event in stream:
        print_event(event)
        seen.append(event)
    return seen


def run_plain(state_root: Path, name: str | None = None) -> int:
    """Ask the questions, save the profile, run preflight and, when confirmed, the install."""
    from hfwizard.installs import list_installs

    try:
        if name is None:
            found = [i.name for i in list_installs(state_root)]
            name = questionary.text("Install name", default=found[0] if found else "highflame").unsafe_ask()
        draft = Draft.load(state_root, name)
        carry_on = Draft.exists(state_root, name) and draft.step != STEPS[0]
        if carry_on and not questionary.confirm(f"Carry on from the {draft.step} step?", default=True).unsafe_ask():
            draft.reset()
        run_questions(draft)
        left = problems(draft.data)
        if left:
            for p in left:
                print(f"✗ {p.line}")
            return ExitCode.BAD_INPUT
        profile = draft.profile()
        print(dump_profile(profile))
        path = draft.finish()
        print(f"saved profile: {path}")
        if not questionary.confirm("Run preflight checks now?", default=True).unsafe_ask():
            return ExitCode.OK
        draft.save_step("preflight")
        results = asyncio.run(_consume(adapters.run_preflight(profile, draft.dir)))
        failed = [e.result for e in results if isinstance(e, CheckFinished) and e.result.status.value == "fail"]
        skip = list(draft.get("preflight.skip") or [])
        for r in failed:
            if questionary.confirm(f"Override the failed check {r.id}?", default=False).unsafe_ask():
                skip.append(r.id)
            else:
                print("fix it and run `hfwizard --plain` again")
                return ExitCode.FAILED
        if skip:
            draft.set("preflight.skip", skip)
            draft.finish()
            profile = draft.profile()
        if not questionary.confirm("Install now?", default=False).unsafe_ask():
            return ExitCode.OK
        events = asyncio.run(_consume(adapters.run_install(profile, draft.dir)))
        end = next((e for e in reversed(events) if isinstance(e, InstallFinished)), None)
        return end.exit_code if end else ExitCode.FAILED
    except KeyboardInterrupt:
        print("interrupted: answers so far are saved; run `hfwizard --plain` again to carry on")
        return ExitCode.INTERRUPTED
    except HfwizardError as exc:
        print(f"hfwizard: {exc}")
        return exc.exit_code
