"""Pilot tests of issue 14's rules: each bad answer that used to pass is now held on the screen that owns it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hfwizard.screens.app import WizardApp
from textual.widgets import Checkbox

from tests.screens_helpers import next_disabled, open_step, text_of, type_into

SIZE = (80, 24)
PK = "pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA"
DATA = {"target.cloud": "existing", "postgres.host": "pg.example.com", "postgres.password": "env:PGPASSWORD",
        "redis.endpoints": ["redis-0.example.com:6379"], "clickhouse.backup.bucket": "hf-backups"}
INGRESS = {"ingress.domain": "hf.example.com", "ingress.tls.existingSecret": "hf-tls"}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    return tmp_path / "state"


async def held(app: WizardApp, pilot: Any, selector: str, text: str, error: str, why: str) -> None:
    """Type `text`: Next is held and the field's own line says `why` in words (never a regex)."""
    await type_into(pilot, selector, text)
    assert next_disabled(app)
    shown = text_of(app, error)
    assert why in shown, shown
    assert "pattern" not in shown and "^" not in shown


async def test_ingress_on_needs_a_domain(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "ingress", {"ingress.tls.existingSecret": "hf-tls"})
        assert next_disabled(app)
        assert "required while" in text_of(app, "#e-ingress-domain")
        await type_into(pilot, "#f-ingress-domain", "hf.example.com")
        assert not next_disabled(app)
        await held(app, pilot, "#f-ingress-domain", "", "#e-ingress-domain", "public host name")
        app.screen.query_one("#ingress-enabled", Checkbox).value = False
        await pilot.pause()
        assert not next_disabled(app)  # no Ingress: no domain needed


async def test_tls_needs_exactly_one_source(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "ingress", {"ingress.domain": "hf.example.com"})
        assert next_disabled(app)
        assert "choose exactly one certificate source" in text_of(app, "#e-ingress-tls")
        await type_into(pilot, "#f-ingress-tls-issuer", "letsencrypt")
        assert not next_disabled(app)
        app.screen.query_one("#tls-enabled", Checkbox).value = False
        await type_into(pilot, "#f-ingress-tls-issuer", "")
        assert not next_disabled(app)  # TLS off: no source needed


async def test_localhost_is_not_a_public_domain(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "ingress", INGRESS)
        await held(app, pilot, "#f-ingress-domain", "localhost", "#e-ingress-domain", "public host name")
        await held(app, pilot, "#f-ingress-domain", "app.localhost", "#e-ingress-domain", "localhost")


async def test_acm_certificate_needs_the_alb_class(root: Path) -> None:
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50"
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "ingress", {"target.cloud": "existing", "ingress.domain": "hf.example.com"})
        await held(app, pilot, "#f-ingress-tls-acmcertificatearn", arn, "#e-ingress-tls-acmcertificatearn",
                   "set the ingress class to alb")
        await type_into(pilot, "#f-ingress-classname", "alb")
        assert not next_disabled(app)


async def test_a_tls_secret_is_refused_with_the_alb_class(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "ingress", {"target.cloud": "existing", **INGRESS})
        assert not next_disabled(app)  # nginx serves a TLS Secret
        await type_into(pilot, "#f-ingress-classname", "alb")
        assert next_disabled(app)
        shown = text_of(app, "#e-ingress-tls-existingsecret")
        assert "takes TLS only from an ACM certificate" in shown and "Kubernetes TLS Secret" in shown, shown
        await type_into(pilot, "#f-ingress-classname", "nginx")
        assert not next_disabled(app)
        # On AWS the platform's Ingress is an ALB whatever the class says: the Secret is refused there too.
        assert app.draft is not None
        app.draft.set("target.cloud", "aws")
        app.screen.revalidate()  # type: ignore[attr-defined]
        await pilot.pause()
        assert next_disabled(app)
        assert "on AWS the platform's Ingress is an ALB" in text_of(app, "#e-ingress-tls-existingsecret")


async def test_clerk_publishable_key_is_required(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "clerk")
        assert next_disabled(app)
        assert "required" in text_of(app, "#e-clerk-publishablekey")
        await type_into(pilot, "#f-clerk-publishablekey", PK)
        assert not next_disabled(app)


@pytest.mark.parametrize(("selector", "why"), [
    ("#f-postgres-host", "PostgreSQL server's host"),
    ("#f-redis-endpoints", "at least one node"),
    ("#f-clickhouse-backup-bucket", "bucket"),
])
async def test_data_services_are_required(root: Path, selector: str, why: str) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "data", DATA)
        assert not next_disabled(app)
        await held(app, pilot, selector, "", selector.replace("#f-", "#e-"), why)


async def test_sandbox_needs_no_data_services(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "data", {"target.cloud": "sandbox"})
        assert not next_disabled(app)


async def test_a_cleared_number_is_not_the_default_again(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "sizing")
        await held(app, pilot, "#f-sizing-nodes-cores", "", "#e-sizing-nodes-cores", "enter a whole number")
        await type_into(pilot, "#f-sizing-nodes-cores", "8")
        assert not next_disabled(app)


async def test_patterns_are_said_in_words(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "target")
        await held(app, pilot, "#f-target-namespace", "Bad_NS", "#e-target-namespace",
                   "lowercase letters, digits and dashes")
        await open_step(app, pilot, "data", DATA)
        await held(app, pilot, "#f-redis-endpoints", "redis-1:6379, nope", "#e-redis-endpoints", "host:port")


async def test_port_label_shows_both_bounds(root: Path) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "data", DATA)
        labels = " ".join(str(w.render()) for w in app.screen.query(".field-label"))
        assert "Port (1–65535)" in labels


@pytest.mark.parametrize(("cloud", "field", "good"), [
    ("gcp", "#f-credentials-gcp-project", "acme-prod-123456"),
    ("azure", "#f-credentials-azure-subscriptionid", "0a1b2c3d-0000-4000-8000-0123456789ab"),
])
async def test_cloud_credentials_belong_to_the_credentials_step(root: Path, cloud: str, field: str,
                                                                 good: str) -> None:
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        # Switching cloud on Target no longer locks Target with a rule about another step's field.
        await open_step(app, pilot, "target", {"target.cloud": cloud})
        assert not next_disabled(app)
        assert text_of(app, "#problems") == ""
        await open_step(app, pilot, "credentials")
        assert next_disabled(app)
        assert "required when Highflame runs on" in text_of(app, field.replace("#f-", "#e-"))
        await type_into(pilot, field, good)
        assert not next_disabled(app)


async def test_review_is_a_summary_with_edit_links_and_services(root: Path) -> None:
    from tests.screens_helpers import SANDBOX_ANSWERS

    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "review", {**SANDBOX_ANSWERS, "modules.redTeaming.enabled": False})
        ingress = text_of(app, "#summary-ingress")
        assert "Domain: highflame.sandbox.local" in ingress and "Serve TLS: no" in ingress
        assert "[ ] Adversarial red teaming" in text_of(app, "#summary-modules")
        services = text_of(app, "#services")
        assert "Runtime guardrails: guard" in services and "redteam" not in services
        app.screen.query_one("#edit-ingress").press()  # type: ignore[attr-defined]
        await pilot.pause()
        assert app.screen.id == "ingress-screen"
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.id == "review-screen"  # Next comes back to Review, not on to Preflight


async def test_tls_source_radio_shows_only_its_field(root: Path) -> None:
    from hfwizard.screens.base import FieldRow
    from textual.widgets import RadioButton

    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "ingress", {"ingress.domain": "hf.example.com",
                                                "ingress.tls.existingSecret": "old-tls"})
        rows = {r.path: r for r in app.screen.query(FieldRow)}
        assert rows["ingress.tls.existingSecret"].display and not rows["ingress.tls.issuer"].display
        app.screen.query_one("#source-issuer", RadioButton).value = True
        await pilot.pause()
        assert rows["ingress.tls.issuer"].display and not rows["ingress.tls.existingSecret"].display
        assert app.draft is not None and app.draft.get("ingress.tls.existingSecret") is None
        assert next_disabled(app)  # chosen, not yet given
        assert "choose exactly one certificate source" in text_of(app, "#e-ingress-tls")
        await type_into(pilot, "#f-ingress-tls-issuer", "letsencrypt")
        assert not next_disabled(app)


async def test_choices_read_without_colour(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "target", {"target.cloud": "sandbox"})
        assert str(app.screen.query_one("#cloud-sandbox").render()).startswith("◉")
        assert str(app.screen.query_one("#cloud-aws").render()).startswith("○")
        await open_step(app, pilot, "modules", {"modules.redTeaming.enabled": False})
        assert str(app.screen.query_one("#on-redteaming").render()).startswith("[ ]")
        assert str(app.screen.query_one("#on-guardrails").render()).startswith("[x]")


async def test_without_credentials_the_screens_say_so(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hfwizard import operations

    # This machine's clouds are not the subject: no credential is found, as on a fresh laptop.
    monkeypatch.setattr(operations, "discover_credentials", lambda cloud: [])
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "credentials", {"target.cloud": "aws"})
        await type_into(pilot, "#f-credentials-aws-profile", "prod")
        assert "profile prod is not in the AWS config files → run: aws configure --profile prod" \
            in text_of(app, "#validation")
        app.screen.query_one("#validate").press()  # type: ignore[attr-defined]
        await pilot.pause()
        assert "nothing to validate" in text_of(app, "#validation")
        await open_step(app, pilot, "cluster", {"target.region": "us-east-1"})
        assert "None found in us-east-1" in text_of(app, "#clusters-note")


async def test_data_host_is_resolved_in_place(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    real = socket.getaddrinfo

    def resolver(host: str, *args: Any, **kwargs: Any) -> Any:
        # localhost goes to the real resolver; the other name fails as an unknown name would
        if host == "localhost":
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    from hfwizard import operations

    # The real check (conftest keeps screens off the network; here the resolver itself is the stand-in).
    monkeypatch.setattr(operations, "resolves", operations.resolves.__kwdefaults__["_real"])
    app = WizardApp(root)
    async with app.run_test(size=SIZE) as pilot:
        await open_step(app, pilot, "data", DATA)
        await type_into(pilot, "#f-postgres-host", "localhost")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert text_of(app, "#host-check").startswith("✓ localhost resolves to")
        await type_into(pilot, "#f-postgres-host", "localhostx")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "! localhostx does not resolve from here" in text_of(app, "#host-check")
        assert not next_disabled(app)  # a warning: the cluster may resolve names this machine cannot


async def test_redis_endpoints_are_tried_in_place(root: Path) -> None:
    import socket

    with socket.socket() as server, socket.socket() as closed:
        server.bind(("127.0.0.1", 0))
        server.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
        up, down = (f"127.0.0.1:{s.getsockname()[1]}" for s in (server, closed))
        app = WizardApp(root)
        async with app.run_test(size=SIZE) as pilot:
            await open_step(app, pilot, "data", DATA)
            await type_into(pilot, "#f-redis-endpoints", f"{up}, {down}")
            await app.workers.wait_for_complete()
            await pilot.pause()
            shown = text_of(app, "#host-check")
            assert f"✓ {up} answers" in shown, shown
            assert f"! {down} refused the connection" in shown, shown
            assert not next_disabled(app)  # a warning: the cluster may reach what this machine cannot
