"""Preflight at 80×24: failures first, then warnings, then passes, skipped checks folded into one line;
remedies phrased for the wizard (no command-line options)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hfwizard.screens.app import WizardApp
from textual.widgets import Collapsible

from hfwizard import operations
from hfwizard.checks.base import CheckResult, Status
from hfwizard.events import CheckFinished, CheckStarted, Event, PreflightFinished
from tests.screens_helpers import SANDBOX_ANSWERS, open_step

# 18 skipped checks reported first, then the two that matter: the order the issue saw.
RESULTS = [*(CheckResult(f"skip/{n}", f"Skipped check {n}", Status.SKIPPED, "not applicable here") for n in range(18)),
           CheckResult("kubernetes/api", "Kubernetes API", Status.PASS, "reachable, version 1.32"),
           CheckResult("outbound/ghcr", "Registry reachable", Status.WARN, "slow answer (2.1 s)"),
           CheckResult("blob/bucket", "Backup bucket", Status.FAIL, "bucket hf-backups does not exist",
                       remedy="create it, or skip the check with --skip-check blob/bucket and check it yourself")]


def fake_preflight(*args: Any, **kwargs: Any) -> AsyncIterator[Event]:
    async def stream() -> AsyncIterator[Event]:
        for r in RESULTS:
            yield CheckStarted(r.id, r.title)
            yield CheckFinished(r)
        yield PreflightFinished(passed=1, warned=1, failed=1, skipped=18)
    return stream()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The screen's subject is the order and wording of results, not the checks: feed it a known set.
    monkeypatch.setattr(operations, "preflight", fake_preflight)
    return tmp_path / "state"


async def test_failures_first_skipped_folded(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_step(app, pilot, "preflight", SANDBOX_ANSWERS)
        await pilot.pause()
        await pilot.pause()
        rows = [c for c in app.screen.query_one("#checks").children if isinstance(c, Collapsible)]
        assert [c.id for c in rows] == ["check-blob-bucket", "check-outbound-ghcr", "check-kubernetes-api"]
        assert "18 skipped" in str(app.screen.query_one("#skipped", Collapsible).title)
        text = " ".join(str(w.render()) for w in rows[0].query("Static"))
        assert "tick Override on this check" in text and "--skip-check" not in text
        assert str(app.screen.query_one("#preflight-intro").render()).startswith("1 failed")
