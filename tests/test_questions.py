"""hfwizard.questions is the one list both interactive front ends ask: walk it through plain mode and the
screens, for every target, and fail on any question one of them does not ask (or asks differently)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hfwizard.screens.app import WizardApp
from hfwizard.screens.base import FieldCheckbox, FieldInput, FieldRadioSet

from hfwizard import operations
from hfwizard.draft import STEPS, Draft
from hfwizard.frontends import plain
from hfwizard.profile_io import parse_yaml, to_plain
from hfwizard.questions import TLS_SOURCE_OF, TLS_SOURCE_PROMPT, all_questions, tls_source

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("aws", "gcp", "azure", "existing", "sandbox")


def example(target: str) -> dict[str, Any]:
    """The example profile for a target, as the plain data a draft holds (every step answered)."""
    path = ROOT / "profiles" / f"{target}.yaml"
    data = to_plain(parse_yaml(path.read_bytes(), str(path)))
    assert isinstance(data, dict)
    return data


class FakeQuestionary:
    """questionary's select / confirm / text, answering every prompt with its default and noting it."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def _prompt(self, message: str, answer: Any) -> Any:
        self.asked.append(message)
        return type("Prompt", (), {"unsafe_ask": staticmethod(lambda: answer)})()

    def select(self, message: str, choices: list[str], default: str) -> Any:
        assert default in choices
        return self._prompt(message, default)

    def confirm(self, message: str, default: bool) -> Any:
        return self._prompt(message, default)

    def text(self, message: str, default: str, validate: Any, instruction: str | None = None) -> Any:
        assert validate(default) is True, f"{message}: the example's answer {default!r} was refused"
        return self._prompt(message, default)

    def password(self, message: str, validate: Any) -> Any:
        # A secret reference is asked masked, its current value named in the prompt: empty keeps it.
        self.asked.append(message.split(" [now:", 1)[0])
        assert validate("") is True
        return type("Prompt", (), {"unsafe_ask": staticmethod(lambda: "")})()


def test_questions_are_distinct() -> None:
    asked = all_questions()
    assert len({q.path for q in asked}) == len(asked)
    assert len({q.question for q in asked}) == len(asked), "plain mode tells questions apart by their prompt"
    assert {q.step for q in asked} == set(STEPS) - {"review"}


@pytest.mark.parametrize("target", TARGETS)
def test_plain_mode_asks_every_question_that_applies(target: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeQuestionary()
    monkeypatch.setattr(plain, "questionary", fake)
    draft = Draft(tmp_path, "walk")
    draft.data = example(target)
    source = tls_source(draft.data)
    plain.run_questions(draft)
    # The TLS certificate's sources are one choice, then only the chosen source's fields.
    expected = [q.question for q in all_questions() if q.applies(draft.data)
                and TLS_SOURCE_OF.get(q.path, source) == source]
    first = next(i for i, q in enumerate(all_questions()) if q.path in TLS_SOURCE_OF)
    if all_questions()[first].applies(draft.data):  # TLS is on
        assert source is not None, "each example with TLS on names its source"
        expected.insert(sum(q.applies(draft.data) for q in all_questions()[:first]), TLS_SOURCE_PROMPT)
    assert fake.asked == expected


def test_every_question_applies_somewhere() -> None:
    # Each question is asked for some target (with its switches on), so the walks above cover them all.
    covered = {q.path for t in TARGETS for q in all_questions() if q.applies(example(t))}
    assert covered == {q.path for q in all_questions()}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("target", TARGETS)
async def test_screens_ask_every_question_of_the_target(target: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Discovery would search this machine's clouds: the walk is about which fields each screen shows.
    monkeypatch.setattr(operations, "discover_credentials", lambda cloud: [])
    monkeypatch.setattr(operations, "list_clusters", lambda cloud, data: [])
    monkeypatch.setattr(operations, "discover_data_services",
                        lambda cloud, data: operations.DataServices([], [], [], []))
    app = WizardApp(tmp_path / "state")
    data = example(target)
    shown: dict[str, str] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_draft("walk").data = data
        for step in STEPS[:-1]:
            app.show(step)
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.screen.id == f"{step}-screen"
            for widget in app.screen.query("*"):
                if isinstance(widget, FieldInput):
                    shown[widget.path] = widget.kind
                elif isinstance(widget, FieldCheckbox | FieldRadioSet):
                    shown[widget.path] = "bool" if isinstance(widget, FieldCheckbox) else "choice"
    # The screens show a question that needs a switch beside that switch, whatever it says.
    expected = {q.path: q.input_kind for q in all_questions() if target in q.clouds}
    assert shown == expected
