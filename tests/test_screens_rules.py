"""Pilot tests of each wizard step's rules: bad values hold Next with the reason, good ones free it, answers persist."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from hfwizard.screens.app import WizardApp
from textual.widgets import Input

from hfwizard.draft import Draft
from tests.screens_helpers import SANDBOX_ANSWERS, next_disabled, open_step, text_of, type_into

SIZE = (80, 24)
# An existing cluster's data services, answered: the Data step's Next is free with them.
DATA = {"postgres.host": "pg.example.com", "redis.endpoints": ["redis-0.example.com:6379"],
        "clickhouse.backup.bucket": "hf-backups"}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    return tmp_path / "state"


async def test_welcome_new_install_goes_to_target(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_into(pilot, "#new-name", "Bad Name")
        assert "lowercase letters, digits and dashes" in text_of(app, "#e-new-name")
        assert "pattern" not in text_of(app, "#e-new-name")
        assert app.screen.query_one("#new").disabled
        await type_into(pilot, "#new-name", "prod-eu")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.id == "target-screen"
        assert (root / "installs" / "prod-eu").is_dir()


@pytest.mark.parametrize(("selector", "bad", "why", "good"), [
    ("#f-sizing-nodes-cores", "7", "greater than or equal to 8", "12"),
    ("#f-sizing-nodes-cores", "17", "less than or equal to 16", "16"),
    ("#f-sizing-nodes-memorygib", "64", "less than or equal to 32", "24"),
    ("#f-sizing-nodes-count", "5", "greater than or equal to 6", "9"),
    ("#f-sizing-redis-memorygibpernode", "3", "greater than or equal to 4", "4.5"),
    ("#f-sizing-nodes-cores", "abc", "enter a whole number", "8"),
])
async def test_sizing_ranges(root: Path, selector: str, bad: str, why: str, good: str) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "sizing")
        assert not next_disabled(app)
        await type_into(pilot, selector, bad)
        assert next_disabled(app)
        assert why in text_of(app, selector.replace("#f-", "#e-"))
        await type_into(pilot, selector, good)
        assert not next_disabled(app)
        assert text_of(app, selector.replace("#f-", "#e-")) == ""


async def test_sizing_shows_ranges_from_the_model(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "sizing")
        labels = " ".join(str(w.render()) for w in app.screen.query(".field-label"))
        assert "(8–16)" in labels and "(16–32 GiB)" in labels and "(6–1000)" in labels
        assert "(4–1024 GiB)" in labels


async def test_sizing_preset_fills_fields(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "sizing")
        app.screen.query_one("#preset-large").value = True
        await pilot.pause()
        assert app.screen.query_one("#f-sizing-nodes-count", Input).value == "12"
        assert app.draft is not None and app.draft.get("sizing.preset") == "large"


async def test_back_keeps_answers_even_bad_ones(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "sizing", DATA)
        await type_into(pilot, "#f-sizing-nodes-cores", "12")
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert app.screen.id == "data-screen"
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.query_one("#f-sizing-nodes-cores", Input).value == "12"
        await type_into(pilot, "#f-sizing-nodes-cores", "99")
        await pilot.press("ctrl+b")
        await pilot.pause()
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.id == "sizing-screen"
        assert app.screen.query_one("#f-sizing-nodes-cores", Input).value == "99"
        assert next_disabled(app)


async def test_next_refused_while_invalid(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "sizing")
        await type_into(pilot, "#f-sizing-nodes-count", "2")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.id == "sizing-screen"


async def test_restart_comes_back_to_sizing_with_answers(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "target", DATA)
        await pilot.press("ctrl+n")  # credentials
        await pilot.press("ctrl+n")  # cluster
        await pilot.press("ctrl+n")  # data
        await pilot.press("ctrl+n")  # sizing
        await pilot.pause()
        assert app.screen.id == "sizing-screen"
        await type_into(pilot, "#f-sizing-nodes-cores", "14")
        await type_into(pilot, "#f-sizing-nodes-count", "7")
    # A new process: the Welcome screen lists the install at Sizing; Resume (focused) goes back there.
    app2 = WizardApp(root)
    async with app2.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "at Sizing" in str(app2.screen.query_one("#installs").get_option_at_index(0).prompt)
        await pilot.press("enter")
        await pilot.pause()
        assert app2.screen.id == "sizing-screen"
        assert app2.screen.query_one("#f-sizing-nodes-cores", Input).value == "14"
        assert app2.screen.query_one("#f-sizing-nodes-count", Input).value == "7"


async def test_a_bad_answer_is_not_written_to_disk(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "sizing")
        await type_into(pilot, "#f-sizing-nodes-cores", "10")
        await pilot.press("0")  # 100: out of range, so the file keeps 10
        await pilot.pause()
    saved = Draft.load(root, "highflame")
    assert saved.get("sizing.nodes.cores") == 10


async def test_target_choice_is_saved(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "target")
        app.screen.query_one("#cloud-sandbox").value = True
        await pilot.pause()
        await type_into(pilot, "#f-target-namespace", "Bad_NS")
        assert next_disabled(app)
        assert "lowercase letters, digits and dashes" in text_of(app, "#e-target-namespace")
        await type_into(pilot, "#f-target-namespace", "hf")
        assert not next_disabled(app)
    assert Draft.load(root, "highflame").get("target.cloud") == "sandbox"
    assert Draft.load(root, "highflame").get("target.namespace") == "hf"


async def test_cluster_needs_region_and_cluster_on_a_cloud(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hfwizard import operations

    monkeypatch.setattr(operations, "list_clusters", lambda cloud, data: [])
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "cluster", {"target.cloud": "aws"})
        assert next_disabled(app)
        assert "needs region and cluster" in text_of(app, "#problems")
        await type_into(pilot, "#f-target-region", "us-east-1")
        await type_into(pilot, "#f-target-cluster", "prod")
        assert not next_disabled(app)


async def test_cluster_table_marks_requirements() -> None:
    from hfwizard.screens.cluster_screen import cluster_row

    from hfwizard.cloud.base import Cloud, ClusterInfo, NodePool

    good = ClusterInfo(Cloud.AWS, "a", "us-east-1", "1.32", None, None,
                       (NodePool("ng", "m6i.2xlarge", 8, 32, 6),))
    small = ClusterInfo(Cloud.AWS, "b", "us-east-1", "1.30", None, None, (NodePool("ng", "t3.large", 2, 8, 3),))
    assert cluster_row(good)[2:] == ("✓ 1.32", "✓ 6", "✓ 8c/32G")
    assert cluster_row(small)[2:] == ("✗ 1.30", "✗ 3", "✗ 2c/8G")


async def test_data_services_fields(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "data", {"target.cloud": "existing", **DATA})
        await type_into(pilot, "#f-postgres-port", "70000")
        assert "less than or equal to 65535" in text_of(app, "#e-postgres-port")
        assert next_disabled(app)
        await type_into(pilot, "#f-postgres-port", "5432")
        await type_into(pilot, "#f-redis-endpoints", "redis-1:6379, nope")
        assert "[1]: must be host:port" in text_of(app, "#e-redis-endpoints")
        await type_into(pilot, "#f-redis-endpoints", "redis-1:6379, redis-2:6379")
        assert not next_disabled(app)
        assert app.draft is not None and app.draft.get("redis.endpoints") == ["redis-1:6379", "redis-2:6379"]


async def test_secret_field_takes_references_and_never_shows_a_value(root: Path) -> None:
    canary = "sk_live_CANARY0123456789"
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "clerk", {"clerk.publishableKey": "pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA"})
        await type_into(pilot, "#f-clerk-secretkey", canary)
        field = app.screen.query_one("#f-clerk-secretkey", Input)
        assert field.password  # a literal typed into a reference field is masked
        assert next_disabled(app)
        assert "secret reference" in text_of(app, "#e-clerk-secretkey")
        assert canary not in text_of(app, "#e-clerk-secretkey")
        await type_into(pilot, "#f-clerk-secretkey", "env:CLERK_SECRET_KEY")
        assert not field.password
        assert not next_disabled(app)
    for f in (root / "installs" / "highflame").iterdir():
        assert canary not in f.read_text()


async def test_clerk_key_decodes_host(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "clerk")
        await type_into(pilot, "#f-clerk-publishablekey", "pk_live_nothing")
        assert next_disabled(app)
        assert text_of(app, "#e-clerk-publishablekey")
        await type_into(pilot, "#f-clerk-publishablekey", "pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA")
        assert "clerk.example.test" in text_of(app, "#frontend-host")
        assert not next_disabled(app)


async def test_keyring_missing_offers_references(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "clerk")
        await type_into(pilot, "#secret-once", "sk_live_CANARY")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = text_of(app, "#keyring-status")
        assert "no system keyring" in status and "env:NAME or file:PATH" in status
        assert app.screen.query_one("#secret-once", Input).value == ""
        assert app.draft is not None and app.draft.get("clerk.secretKey") is None


async def test_keyring_stores_and_keeps_a_reference(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        priority = 1  # type: ignore[assignment]
        store: ClassVar[dict[tuple[str, str], str]] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.store.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.store[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.store.pop((service, username), None)

    keyring.set_keyring(Memory())
    try:
        app = WizardApp(root)
        async with app.run_test(size=SIZE) as pilot:
            await open_step(app, pilot, "clerk", {"clerk.publishableKey": "pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA"})
            await type_into(pilot, "#secret-once", "sk_live_CANARY")
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.draft is not None
            assert app.draft.get("clerk.secretKey") == "keyring:hfwizard/highflame-clerk-secret-key"
            assert Memory.store[("hfwizard", "highflame-clerk-secret-key")] == "sk_live_CANARY"
            assert not next_disabled(app)
    finally:
        keyring.set_keyring(keyring.backends.fail.Keyring())


async def test_modules_replicas_and_toggle(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "modules")
        await type_into(pilot, "#f-modules-guardrails-replicas", "0")
        assert next_disabled(app)
        assert "greater than or equal to 1" in text_of(app, "#e-modules-guardrails")
        await type_into(pilot, "#f-modules-guardrails-replicas", "3")
        assert not next_disabled(app)
        app.screen.query_one("#on-redteaming").value = False
        await pilot.pause()
        assert app.draft is not None and app.draft.get("modules.redTeaming.enabled") is False


async def test_ingress_rules(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "ingress")
        await type_into(pilot, "#f-ingress-domain", "not a host")
        assert next_disabled(app)
        await type_into(pilot, "#f-ingress-domain", "hf.example.com")
        await type_into(pilot, "#f-ingress-tls-existingsecret", "tls")
        await type_into(pilot, "#f-ingress-tls-issuer", "letsencrypt")
        assert "choose one TLS source" in text_of(app, "#e-ingress-tls")
        await type_into(pilot, "#f-ingress-tls-issuer", "")
        assert not next_disabled(app)


async def test_review_shows_profile_and_saves_it(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "review", SANDBOX_ANSWERS)
        assert not next_disabled(app)
        assert "cloud: sandbox" in text_of(app, "#profile-yaml")
        assert "highflame" in text_of(app, "#values-diff")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.id == "preflight-screen"
    assert (root / "installs" / "highflame" / "profile.yaml").is_file()


async def test_review_blocks_an_incomplete_profile(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "review", {"target.cloud": "aws"})
        assert next_disabled(app)
        assert "needs region and cluster" in text_of(app, "#problems")


async def test_export_from_review(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "review", SANDBOX_ANSWERS)
        await pilot.click("#export")
        await pilot.pause()
        inp = app.screen.query_one("#export-path", Input)
        inp.value = str(out)
        await pilot.press("enter")
        await pilot.pause()
    assert "kind: InstallProfile" in out.read_text()


async def test_f1_opens_help(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "sizing")
        await pilot.press("f1")
        await pilot.pause()
        assert app.screen.id == "help-modal"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.id == "sizing-screen"


async def test_next_pressed_twice_before_the_screen_changes_moves_once(root: Path) -> None:
    """A second Next from the screen being left is ignored: acting on it pushed the next screen twice
    and crashed the wizard (DuplicateIds) when Ctrl+N was pressed quickly."""
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "sizing")
        app.next_step("sizing")
        app.next_step("sizing")  # the same screen's second Next, before the switch completes
        await pilot.pause()
        await app.workers.wait_for_complete()
        assert app.screen.id == "modules-screen"
        app.prev_step("modules")
        app.prev_step("modules")
        await pilot.pause()
        assert app.screen.id == "sizing-screen"


async def test_next_takes_what_the_fields_show(root: Path) -> None:
    """Ctrl+N right after a paste: Next judges the text on screen, even before its Changed messages ran."""
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "sizing")
        inp = app.screen.query_one("#f-sizing-nodes-count", Input)
        with inp.prevent(Input.Changed):
            inp.value = "5"  # shown, never processed as an answer
        app.screen.action_next()  # type: ignore[attr-defined]
        await pilot.pause()
        assert app.screen.id == "sizing-screen", "a node count below 6 must keep the wizard on Sizing"
        assert app.draft is not None and app.draft.get("sizing.nodes.count") == 5
