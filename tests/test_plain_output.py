"""Plain mode's output and questions without a terminal: preflight listed as the screens list it, long lines
wrapped (never cut), the TLS certificate's source as one choice, and the model's rules in its words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hfwizard.checks.base import CheckResult, Status
from hfwizard.draft import Draft
from hfwizard.events import CheckFinished, PreflightFinished, StepFailed
from hfwizard.frontends import plain
from hfwizard.questions import TLS_SOURCE_PROMPT, for_step

LONG = ("helm/highflame-flag: container highflame-generic: image registry.corp.invalid:5000/ghcr/highflame-ai/"
        "release-highflame-flag:2026.02: the registry cannot be reached from the nodes: open the nodes' egress "
        "to the registry, or set images.mirror to a registry they reach")


def _result(check_id: str, status: Status, remedy: str | None = None) -> CheckFinished:
    return CheckFinished(CheckResult(check_id, check_id, status, f"{check_id} found", remedy))


def test_preflight_lists_failures_then_warnings_then_passes_and_folds_the_skipped(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    printer = plain.Printer()
    for event in (_result("a/pass", Status.PASS), _result("b/skip", Status.SKIPPED),
                  _result("c/warn", Status.WARN, "look at c"), _result("d/fail", Status.FAIL, "fix d"),
                  _result("e/skip", Status.SKIPPED), _result("f/pass", Status.PASS)):
        printer(event)
    assert capsys.readouterr().out == ""  # held until the preflight ends
    printer(PreflightFinished(2, 1, 1, 2))
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["[FAIL] d/fail: d/fail found", "       -> fix d",
                     "[warn] c/warn: c/warn found", "       -> look at c",
                     "[ok  ] a/pass: a/pass found", "[ok  ] f/pass: f/pass found",
                     "[skip] 2 skipped (b/skip found; e/skip found): b/skip, e/skip",
                     "preflight: 2 passed, 1 warnings, 1 failed, 2 skipped"]


def test_long_lines_are_wrapped_to_the_terminal_not_cut(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "50")
    plain.print_event(StepFailed("helm/highflame-flag", "stalled: nothing advanced for 10s", "change what the "
                                 "causes below name, then `hfwizard resume`", (LONG,)))
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) > 6 and all(len(line) <= 49 for line in lines), lines
    assert "".join(out.split()).find("".join(LONG.split())) >= 0  # every character is there, in order
    assert lines[0].startswith("FAIL helm/highflame-flag") and lines[1].startswith("     ")


class Answers:
    """questionary's select / text / confirm answering from a script by prompt, noting every prompt."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.script, self.asked = script, []  # type: ignore[var-annotated]

    def _prompt(self, message: str, default: Any) -> Any:
        self.asked.append(message)
        answer = next((v for k, v in self.script.items() if message.startswith(k)), default)
        return type("Prompt", (), {"unsafe_ask": staticmethod(lambda: answer)})()

    def select(self, message: str, choices: list[str], default: str) -> Any:
        assert default in choices
        return self._prompt(message, default)

    def confirm(self, message: str, default: bool) -> Any:
        return self._prompt(message, default)

    def text(self, message: str, default: str, validate: Any, instruction: str | None = None) -> Any:
        answer = self._prompt(message, default)
        verdict = validate(answer.unsafe_ask())
        self.asked.append(f"verdict: {verdict}")
        return answer

    def password(self, message: str, validate: Any) -> Any:
        return self._prompt(message, "")


def test_the_tls_source_is_one_choice_then_only_its_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50"
    fake = Answers({"Public domain": "hf.example.com", "Ingress class": "alb", TLS_SOURCE_PROMPT:
                    "AWS ACM certificate (ALB)", "ACM certificate ARN": arn})
    monkeypatch.setattr(plain, "questionary", fake)
    draft = Draft(tmp_path, "tls")
    draft.set("target.cloud", "existing")
    draft.set("ingress.tls.existingSecret", "old-tls")  # the source given before is cleared by the choice
    plain.ask_questions(draft, for_step("ingress"))
    prompts = [p for p in fake.asked if not p.startswith("verdict")]
    assert prompts == ["Create an Ingress?", "Public domain of the platform", "Ingress class", "Serve TLS?",
                       TLS_SOURCE_PROMPT, "ACM certificate ARN (empty: none)"]
    assert draft.get("ingress.tls.acmCertificateArn") == arn and draft.get("ingress.tls.existingSecret") is None


def test_plain_mode_refuses_a_tls_secret_with_the_alb_class_in_the_models_words(tmp_path: Path) -> None:
    draft = Draft(tmp_path, "alb")
    for path, value in {"target.cloud": "existing", "ingress.domain": "hf.example.com",
                        "ingress.className": "alb"}.items():
        draft.set(path, value)
    why = plain._reason(draft, "ingress", "ingress.tls.existingSecret", "hf-tls")
    assert why is not None and "takes TLS only from an ACM certificate" in why, why
    draft.set("ingress.className", "nginx")
    assert plain._reason(draft, "ingress", "ingress.tls.existingSecret", "hf-tls") is None
