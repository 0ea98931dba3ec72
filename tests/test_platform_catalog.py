"""Platform catalogs: they load, hold together, and agree with Highflame's own per-cloud values templates."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from hfwizard.platform import catalog as catalog_mod
from hfwizard.platform.catalog import CatalogError, available_versions, deep_merge, latest, load_catalog
from hfwizard.platform.facts import PROFILE_FACTS, SECRET_SOURCES
from hfwizard.platform.secretsets import PLATFORM_SECRETS, generated_secrets
from tests.platform_support import IAC, IAC_MISSING

needs_iac = pytest.mark.skipif(not IAC.is_dir(), reason=IAC_MISSING)

# Where Highflame's own templates disagree with each other, the catalog follows the majority; each case here
# is such a disagreement, not a difference of ours.
VENDOR_INCONSISTENT = {
    ("GKE", "cerberus", "service.port"): "GKE says 8080 while its probes and its ingress use 8082 (EKS, AKS: 8082)",
    ("GKE", "cerberus", "mounts"): "GKE mounts no JWT public key, yet cerberus reads it from the mounted path",
}


def test_two_releases_are_shipped_and_the_newest_is_the_default() -> None:
    assert available_versions() == ["2025.11", "2026.02"]
    assert latest() == "2026.02"
    assert load_catalog().platform == "2026.02"


def test_each_release_pins_its_charts() -> None:
    new, old = load_catalog("2026.02"), load_catalog("2025.11")
    assert (new.charts.generic.version, new.charts.redteam.version, new.charts.ingress.version) == \
        ("1.0.3", "1.0.5", "1.0.0")
    assert (old.charts.generic.version, old.charts.redteam.version) == ("1.0.2", "1.0.4")
    for cat in (new, old):
        op = cat.clickhouse_operator
        assert (op.name, op.version, op.repository) == \
            ("altinity-clickhouse-operator", "0.25.6", "https://helm.altinity.com")
        assert cat.repository == "https://highflame-ai.github.io/charts"
    assert set(old.services) == set(new.services)


def test_an_unknown_release_names_what_is_shipped() -> None:
    with pytest.raises(CatalogError) as err:
        load_catalog("2030.01")
    assert "2030.01" in str(err.value) and "2025.11, 2026.02" in str(err.value)


def test_nineteen_services_with_the_real_names() -> None:
    cat = load_catalog()
    assert len(cat.services) == 19
    assert cat.release_name("guard-deepcontext") == "highflame-guard-deep"
    assert cat.release_name("admin") == "highflame-admin"
    assert {n for n, s in cat.services.items() if s.chart == "redteam"} == {"redteam", "redteam-lab1"}
    assert {n for n, s in cat.services.items() if s.node_group == "gpu"} == {"guard", "guard-cm", "guard-deepcontext"}


def test_every_env_source_resolves_to_something_defined() -> None:
    generated = {k for spec in generated_secrets() if spec.name == PLATFORM_SECRETS for k in spec.entries}
    for name, svc in load_catalog().services.items():
        for var, source in svc.env.items():
            kind, _, arg = source.partition(":")
            if kind == "profile":
                assert arg in PROFILE_FACTS, f"{name}.{var}: profile:{arg} is not defined"
            elif kind == "secret":
                assert arg in SECRET_SOURCES, f"{name}.{var}: secret:{arg} is not defined"
            elif kind == "generated":
                assert arg in generated, f"{name}.{var}: generated:{arg} is not a generated key"


def test_a_catalog_that_waits_in_a_circle_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = catalog_mod._raw("2026.02", ())
    raw["services"]["flag"]["waitFor"] = ["admin"]
    with pytest.raises(ValueError, match="circle"):
        catalog_mod.Catalog.model_validate(raw)


def test_a_bad_env_source_is_refused() -> None:
    raw = catalog_mod._raw("2026.02", ())
    raw["services"]["flag"]["env"] = {"X": "literal-without-kind"}
    with pytest.raises(ValueError, match="X"):
        catalog_mod.Catalog.model_validate(raw)


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [2], "e": None}}) == {"a": {"b": 1, "c": [2], "e": None}, "d": 1}
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}


# ---- agreement with Highflame's values templates ----------------------------------------------------------


def _templates(cloud: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((IAC / cloud).glob("highflame-*-helm-values-tmpl.yml")):
        name = re.sub(r"^highflame-(.*)-helm-values-tmpl\.yml$", r"\1", path.name)
        out[name] = yaml.safe_load(path.read_text())
    return out


def _probe(p: dict[str, Any]) -> tuple[str, int]:
    return p["httpGet"]["path"], int(p["httpGet"]["port"])


@needs_iac
@pytest.mark.parametrize("cloud", ["EKS", "AKS", "GKE"])
def test_catalog_agrees_with_the_vendor_templates(cloud: str) -> None:
    cat = load_catalog()
    templates = _templates(cloud)
    assert set(templates) - {"ingress"} == set(cat.services), "a service is missing on one side"
    checked = 0
    for name, tmpl in templates.items():
        if name == "ingress":
            continue
        svc = cat.services[name]
        if "fullnameOverride" in tmpl:
            assert tmpl["fullnameOverride"] == cat.release_name(name), name
        port = tmpl.get("service", {}).get("port")
        if port is not None and (cloud, name, "service.port") not in VENDOR_INCONSISTENT:
            assert port == svc.port, f"{cloud} {name} service.port"
        if "ports" in tmpl.get("service", {}):
            assert {p["name"]: p["port"] for p in tmpl["service"]["ports"]} == svc.ports
        probe_port = svc.probes.port or svc.port
        if "livenessProbe" in tmpl:
            assert _probe(tmpl["livenessProbe"]) == (svc.probes.liveness, probe_port), f"{cloud} {name}"
            assert _probe(tmpl["readinessProbe"]) == (svc.probes.readiness, probe_port), f"{cloud} {name}"
        if "nodeSelector" in tmpl:
            assert tmpl["nodeSelector"] == {cat.node_group_label: svc.node_group}, f"{cloud} {name}"
        # The Redis CA mount is the profile's choice (ours adds it when redis.caCert is set); the feature-flag
        # file is ours (Highflame's goff.yaml has no flags file beside it).
        vendor_mounts = {(m["mountPath"], m.get("subPath")) for m in tmpl.get("volumeMounts") or []
                         if "redis" not in m["name"]}
        ours = {(m.path, m.key) for m in svc.mounts if m.key != "flags.yaml"}
        if (cloud, name, "mounts") not in VENDOR_INCONSISTENT:
            assert vendor_mounts == ours, f"{cloud} {name} mounts"
            vendor_secrets = {v["secret"]["secretName"] for v in tmpl.get("volumes") or []
                              if "redis" not in v["name"]}
            assert vendor_secrets == {m.secret for m in svc.mounts}, f"{cloud} {name} mounted Secrets"
        ingress = tmpl.get("ingress") or {}
        if cloud != "GKE":
            hosts = {h["host"].split(".", 1)[0]: [p["path"] for p in h["paths"]] for h in ingress.get("hosts", [])}
            assert hosts == {r.host: r.paths for r in svc.routes}, f"{cloud} {name} routes"
        checked += 1
    assert checked == 19


@needs_iac
def test_resources_scaling_and_identity_agree_with_the_eks_templates() -> None:
    cat = load_catalog()
    for name, tmpl in _templates("EKS").items():
        svc = cat.services[name]
        assert tmpl["resources"] == svc.resources.model_dump(), name
        auto = tmpl.get("autoscaling")
        if auto:
            assert (auto["enabled"], auto["minReplicas"], auto["maxReplicas"]) == \
                (svc.autoscaling.enabled, svc.autoscaling.min, svc.autoscaling.max), name
        annotated = "eks.amazonaws.com/role-arn" in ((tmpl.get("serviceAccount") or {}).get("annotations") or {})
        assert annotated == svc.service_account.cloud_identity, name
        rules = ((tmpl.get("serviceAccount") or {}).get("role") or {}).get("rules")
        assert bool(rules) == svc.service_account.secrets_access, name


@needs_iac
def test_gke_shared_ingress_routes_agree() -> None:
    cat = load_catalog()
    tmpl = _templates("GKE")["ingress"]
    vendor: dict[tuple[str, str], list[str]] = {}
    for host in tmpl["ingress"]["hosts"]:
        for p in host["paths"]:
            vendor.setdefault((host["host"].split(".", 1)[0], p["serviceName"]), []).append(p["path"])
            svc = next(s for n, s in cat.services.items() if cat.release_name(n) == p["serviceName"])
            assert p["servicePort"] == svc.port
    ours = {(r.host, cat.release_name(n)): r.paths for n, s in cat.services.items() for r in s.routes}
    assert vendor == ours
    assert [c["domain"].split(".", 1)[0] for c in tmpl["gceIngress"]["uniqueManagedCertificate"]["certificateList"]] \
        == cat.hosts


def test_a_profile_naming_an_unshipped_release_is_refused() -> None:
    from pydantic import ValidationError

    from hfwizard.profile import InstallProfile

    assert InstallProfile.model_validate({"platform": {"version": "2025.11"}}).platform.version == "2025.11"
    with pytest.raises(ValidationError, match=r"2030\.01 is not shipped .*2025\.11, 2026\.02"):
        InstallProfile.model_validate({"platform": {"version": "2030.01"}})
