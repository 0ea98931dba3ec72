"""Plain prompt mode (`hfwizard --plain`): hfwizard.questions as questionary prompts, events as lines."""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from pathlib import Path
from typing import Any

import questionary

from hfwizard import operations
from hfwizard.checks.base import CheckResult, Status, by_urgency
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
from hfwizard.profile_io import dump_profile
from hfwizard.questions import TLS_SOURCE_OF, TLS_SOURCE_PROMPT, TLS_SOURCES, Question, by_path, for_step, tls_source


def say(text: str, first: str = "", rest: str | None = None) -> None:
    """Print `text` wrapped to the terminal's width (never cut): `first` leads its first line, `rest` (default:
    as many spaces) the lines after it."""
    width = max(shutil.get_terminal_size((100, 24)).columns - 1, 40)
    rest = " " * len(first) if rest is None else rest
    for n, line in enumerate(text.splitlines() or [""]):
        print(textwrap.fill(line, width, initial_indent=first if n == 0 else rest, subsequent_indent=rest,
                            break_on_hyphens=False) or first.rstrip())


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


def ask(draft: Draft, q: Question) -> None:
    current = effective(draft.data, q.path)
    if q.kind == "choice":
        choices = list(q.options())
        default = current if current in choices else choices[0]
        answer: Any = questionary.select(q.question, choices=choices, default=default).unsafe_ask()
    elif q.kind == "bool":
        answer = questionary.confirm(q.question, default=bool(current)).unsafe_ask()
    else:
        kind = q.input_kind

        def check(text: str) -> bool | str:
            return _reason(draft, q.step, q.path, from_text(kind, text)) or True

        if q.secret:
            # A reference is asked masked: whatever is typed or pasted there may be the secret itself.
            prompt = questionary.password(f"{q.question} [now: {_show(current) or 'none'}; empty keeps it]",
                                          validate=lambda text: True if not text.strip() else check(text))
            typed = prompt.unsafe_ask()
            answer = from_text(kind, typed) if typed.strip() else current
        else:
            prompt = questionary.text(q.question, default=_show(current), validate=check,
                                      instruction=f"({q.help})" if q.help else None)
            answer = from_text(kind, prompt.unsafe_ask())
    draft.set(q.path, answer)
    draft.save()


def ask_tls_source(draft: Draft) -> str:
    """One choice of where the TLS certificate comes from; the other sources' answers are cleared."""
    labels = {label: key for key, label, _ in TLS_SOURCES}
    current = tls_source(draft.data) or ("acm" if effective(draft.data, "ingress.className") == "alb" else "secret")
    default = next(label for label, key in labels.items() if key == current)
    chosen = labels[questionary.select(TLS_SOURCE_PROMPT, choices=list(labels), default=default).unsafe_ask()]
    for key, _, paths in TLS_SOURCES:
        for path in paths if key != chosen else ():
            draft.set(path, None)
    draft.save()
    return chosen


def ask_questions(draft: Draft, questions: list[Question] | tuple[Question, ...]) -> None:
    """Ask each question that applies, in order; the TLS sources as one choice, then only its fields."""
    chosen: str | None = None
    for q in questions:
        if not q.applies(draft.data):
            continue
        if q.path in TLS_SOURCE_OF:
            chosen = chosen or ask_tls_source(draft)
            if TLS_SOURCE_OF[q.path] != chosen:
                continue
        ask(draft, q)


def run_questions(draft: Draft) -> None:
    # A wizard left on Preflight has every answer: only the review's check of the whole is left.
    step = "review" if draft.step == "preflight" else draft.step
    start = STEPS.index(step) if step in STEPS else 0
    for step in STEPS[start:]:
        draft.save_step(step)
        # In the list's order: the sizing preset comes first, so the sizes it sets become the defaults
        # of the questions after it; a switch comes before the questions that need it.
        ask_questions(draft, for_step(step))
        left = step_problems(draft.data, step)
        for p in left:  # a rule across fields (e.g. TLS sources): say it, then ask the step again
            say(p.line, "  ✗ ")
        if left and step != "review":
            return run_questions(draft)


MARK = {Status.PASS: "ok  ", Status.WARN: "warn", Status.FAIL: "FAIL", Status.SKIPPED: "skip"}


class Printer:
    """Events as wrapped lines. Check results are held until preflight ends, then listed as the screens list
    them: failures, warnings, passes (hfwizard.checks.base.by_urgency), the skipped folded into one line."""

    def __init__(self) -> None:
        self.checks: list[CheckResult] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, CheckFinished):
            self.checks.append(event.result)
        elif isinstance(event, PreflightFinished):
            self.list_checks()
            print(f"preflight: {event.passed} passed, {event.warned} warnings, {event.failed} failed, "
                  f"{event.skipped} skipped")
        elif isinstance(event, StepStarted):
            say(f"{event.step_id}: {event.title}", "==> ")
        elif isinstance(event, LogLine):
            if not operations.is_debug(event):  # Helm's DEBUG chatter stays in the install's log file
                say(event.line, "    ")
        elif isinstance(event, StepFinished):
            say(f"{event.step_id} {event.detail}".rstrip(), "ok  ")
        elif isinstance(event, StepFailed):
            say(f"{event.step_id}: {event.error}", "FAIL ", "     ")
            if event.remedy:
                say(event.remedy, "     -> ", "        ")
            for line in event.pod_events:  # the causes the engine found, then the pods' last warnings
                say(line, "     ")
        elif isinstance(event, InstallFinished):
            say(f"{event.status}: {event.message}".rstrip(), "install ")

    def list_checks(self) -> None:
        listed, skipped = by_urgency(self.checks)
        self.checks = []
        for r in listed:
            say(f"{r.id}: {r.finding}", f"[{MARK[r.status]}] ", "       ")
            if r.remedy and r.status in (Status.FAIL, Status.WARN):
                say(r.remedy, "       -> ", "          ")
        if skipped:
            reasons = sorted({r.finding for r in skipped})
            say(f"{len(skipped)} skipped ({'; '.join(reasons)}): {', '.join(r.id for r in skipped)}",
                "[skip] ", "       ")


def print_event(event: Event) -> None:
    """One event as wrapped lines (a check result waits for its preflight's end: see Printer)."""
    Printer()(event)


async def _consume(stream: Any) -> list[Event]:
    seen: list[Event] = []
    printer = Printer()
    async for event in stream:
        printer(event)
        seen.append(event)
    printer.list_checks()  # a preflight cut short still shows what it found
    return seen


def install_with_recovery(draft: Draft) -> int:
    """Install; after a failure, offer to change the answer at fault and retry with the changes (the
    engine's replan, shown as a diff first), as the wizard's failure banner does."""
    draft.step = "install"  # for the Ctrl+C hint only: the saved position stays where the questions ended
    replan = False
    while True:
        run = operations.InstallRun(draft.profile(), draft.dir, replan=replan, signals=True)
        events = asyncio.run(_consume(run.events()))
        end = next((e for e in reversed(events) if isinstance(e, InstallFinished)), None)
        code = end.exit_code if end else int(ExitCode.FAILED)
        if code == ExitCode.INTERRUPTED:
            print("the install is interrupted and resumable: run `hfwizard resume` to carry on")
        if code != ExitCode.FAILED:
            return code
        failed = next((e for e in events if isinstance(e, StepFailed) and not e.interrupted), None)
        texts = (failed.error, failed.remedy or "", *failed.pod_events) if failed else (end.message if end else "",)
        path = operations.answer_at_fault(*texts)
        if path is None or not questionary.confirm(
                f"Change an answer ({by_path(path).label}) and retry with the changes?", default=True).unsafe_ask():
            print("the install failed and is resumable: fix the cause, then run `hfwizard resume`")
            return code
        if not change_answers(draft, by_path(path)):
            return code
        changes = operations.pending_changes(draft.profile(), draft.dir)
        for line in changes:
            say(line, "  change: ")
        if changes and not questionary.confirm("Retry with these changes?", default=True).unsafe_ask():
            return code
        replan = bool(changes)


def change_answers(draft: Draft, at_fault: Question) -> bool:
    """Ask the answer at fault again, then its whole step while the step's rules still fail (a rule
    across fields may need another answer); the profile is saved. False: given up."""
    step = for_step(at_fault.step)
    # A TLS source is asked with its choice (the fix may be another source); any other answer alone.
    asked = [q for q in step if q.path in TLS_SOURCE_OF] if at_fault.path in TLS_SOURCE_OF else [at_fault]
    if not at_fault.applies(draft.data):
        asked = list(step)
    while True:
        ask_questions(draft, asked)
        left = step_problems(draft.data, at_fault.step)
        for p in left:
            say(p.line, "  ✗ ")
        if not left:
            draft.finish()
            return True
        if not questionary.confirm("Answer again?", default=True).unsafe_ask():
            return False
        asked = list(step)


def run_plain(state_root: Path, name: str | None = None) -> int:
    """Ask the questions, save the profile, run preflight and, when confirmed, the install."""
    from hfwizard.installs import list_installs

    draft: Draft | None = None
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
                say(p.line, "✗ ")
            return ExitCode.BAD_INPUT
        profile = draft.profile()
        print(dump_profile(profile))
        path = draft.finish()
        print(f"saved profile: {path}")
        if not questionary.confirm("Run preflight checks now?", default=True).unsafe_ask():
            return ExitCode.OK
        draft.save_step("preflight")
        results = asyncio.run(_consume(operations.preflight(profile, draft.dir)))
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
        return install_with_recovery(draft)
    except KeyboardInterrupt:
        if draft is not None and draft.step == "install":
            print("interrupted: the install is resumable; run `hfwizard resume` to carry on")
        else:
            print("interrupted: answers so far are saved; run `hfwizard --plain` again to carry on")
        return ExitCode.INTERRUPTED
    except HfwizardError as exc:
        print(f"hfwizard: {exc}")
        return exc.exit_code
