"""Profile -> values for Highflame's real charts: rendered by the embedded Helm for each cloud, modules that
remove services, and secrets that never reach values or manifests."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hfwizard.engine.helm_embedded import EmbeddedHelm
from hfwizard.platform.catalog import load_catalog
from hfwizard.platform.facts import MissingSetting
from hfwizard.platform.secretsets import generated_secrets, missing_inputs, prerequisite_secrets
from hfwizard.platform.secretspec import generate, materialize
from hfwizard.platform.values import ServiceRelease, databases, enabled_services, env_secrets, service_releases
from tests.platform_support import CANARIES, CHARTS, CHARTS_MISSING, cloud_profile

needs_charts = pytest.mark.skipif(not (CHARTS / "index.yaml").is_file(), reason=CHARTS_MISSING)


@pytest.fixture(autouse=True)
def _canaries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    yield


async def _render_all(releases: list[ServiceRelease]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    async with EmbeddedHelm() as helm:
        for r in releases:
            rendered = await helm.render(r.release, CHARTS / f"{r.chart}-{r.version}.tgz", "highflame", r.values)
            text = "\n---\n".join(rendered.values())
            for canary in CANARIES.values():
                assert canary not in text, f"{r.release}: a secret reached a rendered manifest"
            out[r.release] = [d for d in yaml.safe_load_all(text) if d]
    return out


def _kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


@needs_charts
@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_every_release_renders_with_the_real_charts(cloud: str) -> None:
    profile = cloud_profile(cloud)
    releases = service_releases(profile)
    rendered = asyncio.run(_render_all(releases))
    cat = load_catalog()
    assert len([r for r in releases if r.service != "ingress"]) == 19
    for r in releases:
        docs = rendered[r.release]
        assert not _kind(docs, "Secret"), f"{r.release}: the chart made a Secret from values"
        if r.service == "ingress":
            continue
        svc = cat.services[r.service]
        deploy = next(d for d in _kind(docs, "Deployment") if d["metadata"]["name"] == r.release)
        pod = deploy["spec"]["template"]["spec"]
        container = pod["containers"][0]
        image = f"ghcr.io/highflame-ai/release-highflame-{svc.image or r.service}:{cat.images.tag}"
        assert container["image"] == image
        assert pod["nodeSelector"] == {"kube/nodegroup": svc.node_group}
        assert container["readinessProbe"]["httpGet"] == {"path": svc.probes.readiness,
                                                          "port": svc.probes.port or svc.port}
        assert pod["imagePullSecrets"] == [{"name": "highflame-registry-secret"}]
        refs = [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]
        assert refs == ([r.env_secret.name] if r.env_secret else [])
        for pdb in _kind(docs, "PodDisruptionBudget"):
            assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"]), r.release
        service = next(d for d in _kind(docs, "Service") if d["metadata"]["name"] == r.release)
        assert service["spec"]["ports"][0]["port"] == svc.port
        if cloud == "gcp" and svc.routes:
            backend = _kind(docs, "BackendConfig")[0]
            assert backend["spec"]["healthCheck"]["requestPath"] == svc.probes.readiness
            assert backend["metadata"]["name"] in service["metadata"]["annotations"]["cloud.google.com/backend-config"]
        ingresses = _kind(docs, "Ingress")
        if cloud == "gcp" or not svc.routes:
            assert not ingresses, r.release
        else:
            hosts = {rule["host"] for rule in ingresses[0]["spec"]["rules"]}
            assert hosts == {f"{route.host}.highflame.acme.example.com" for route in svc.routes}
            assert ingresses[0]["spec"]["ingressClassName"] == \
                {"aws": "alb", "azure": "azure-application-gateway"}[cloud]


@needs_charts
def test_the_older_release_renders_too_so_upgrades_can_be_planned() -> None:
    profile = cloud_profile("aws", **{"platform.version": "2025.11"})
    releases = service_releases(profile)
    assert {(r.chart, r.version) for r in releases} == {("highflame-generic", "1.0.2"), ("highflame-redteam", "1.0.4")}
    rendered = asyncio.run(_render_all(releases))
    for r in releases:
        for pdb in _kind(rendered[r.release], "PodDisruptionBudget"):
            assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"]), r.release
        image = _kind(rendered[r.release], "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.endswith(":2025.11")


@needs_charts
def test_gke_shared_ingress_has_managed_certificates_for_the_six_hosts() -> None:
    profile = cloud_profile("gcp", **{"ingress.tls": {"enabled": True}})
    ingress = next(r for r in service_releases(profile) if r.service == "ingress")
    assert ingress.chart == "highflame-ingress" and len(ingress.depends_on) == 9
    docs = asyncio.run(_render_all([ingress]))[ingress.release]
    certs = {d["spec"]["domains"][0] for d in _kind(docs, "ManagedCertificate")}
    assert certs == {f"{h}.highflame.acme.example.com" for h in load_catalog().hosts}
    rule_hosts = {r["host"] for r in _kind(docs, "Ingress")[0]["spec"]["rules"]}
    assert rule_hosts == certs
    assert _kind(docs, "Ingress")[0]["metadata"]["annotations"]["kubernetes.io/ingress.global-static-ip-name"] \
        == "highflame-ip"


def test_eks_alb_annotations_come_from_the_profile() -> None:
    admin = _release(cloud_profile("aws"), "admin")
    ann = admin.values["ingress"]["annotations"]
    assert ann["alb.ingress.kubernetes.io/subnets"] == "subnet-0a1b2c3d4e5f60718, subnet-0b2c3d4e5f6071829"
    assert ann["alb.ingress.kubernetes.io/security-groups"] == "sg-0c3d4e5f60718293a"
    assert ann["alb.ingress.kubernetes.io/certificate-arn"].startswith("arn:aws:acm:us-east-1:123456789012:")
    assert ann["alb.ingress.kubernetes.io/group.name"] == "acme-prod-group"
    assert admin.values["serviceAccount"]["annotations"] == \
        {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/acme-highflame-services"}
    assert admin.values["service"]["type"] == "NodePort"
    # Only the services that call the cloud carry the role.
    assert not _release(cloud_profile("aws"), "authn").values["serviceAccount"]["annotations"]


def test_workload_identity_per_cloud() -> None:
    shield = _release(cloud_profile("gcp"), "shield").values
    assert shield["serviceAccount"]["annotations"] == \
        {"iam.gke.io/gcp-service-account": "highflame-services@acme-highflame.iam.gserviceaccount.com"}
    az = _release(cloud_profile("azure"), "shield").values
    assert az["serviceAccount"]["annotations"] == \
        {"azure.workload.identity/client-id": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}
    assert az["podLabels"] == {"azure.workload.identity/use": "true"}
    per_service = cloud_profile("aws", **{"identity.services": {"shield": "arn:aws:iam::123456789012:role/s"}})
    assert _release(per_service, "shield").values["serviceAccount"]["annotations"] == \
        {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/s"}


def _release(profile: Any, service: str) -> ServiceRelease:
    return next(r for r in service_releases(profile) if r.service == service)


def test_a_module_turned_off_removes_its_services_and_shared_ones_stay() -> None:
    on = cloud_profile("aws")
    off = cloud_profile("aws", **{"modules.guardrails.enabled": False, "modules.redTeaming.enabled": False})
    gone = set(enabled_services(on, load_catalog())) - set(enabled_services(off, load_catalog()))
    assert gone == {"guard", "guard-cm", "guard-deepcontext", "guard-pii", "redteam", "redteam-lab1"}
    releases = {r.release: r for r in service_releases(off)}
    assert "highflame-shield" in releases and "highflame-admin" in releases
    assert releases["highflame-shield"].depends_on == ("highflame-flag", "highflame-authn")
    assert "javelin_redteam" in databases(off)  # admin keeps using it
    obs_off = cloud_profile("aws", **{"modules.observability.enabled": False})
    names = {r.service for r in service_releases(obs_off)}
    assert "observatory" not in names and "collector" in names


def test_releases_come_after_what_they_wait_for() -> None:
    releases = service_releases(cloud_profile("aws"))
    seen: set[str] = set()
    for r in releases:
        assert set(r.depends_on) <= seen, f"{r.release} comes before {set(r.depends_on) - seen}"
        seen.add(r.release)


def test_module_settings_drive_hpa_and_pdb() -> None:
    profile = cloud_profile("aws", **{"modules.guardrails.hpa": {"minReplicas": 3, "maxReplicas": 9},
                                      "modules.guardrails.pdb": {"minAvailable": 2}})
    guard = _release(profile, "guard").values
    assert guard["autoscaling"]["minReplicas"] == 3 and guard["autoscaling"]["maxReplicas"] == 9
    assert guard["podDisruptionBudget"] == {"enabled": True, "minAvailable": 2, "maxUnavailable": None}
    no_hpa = cloud_profile("aws", **{"modules.guardrails.hpa": {"enabled": False},
                                     "modules.guardrails.replicas": 4})
    assert _release(no_hpa, "guard").values["autoscaling"]["enabled"] is False
    assert _release(no_hpa, "guard").values["replicaCount"] == 4


def test_registry_mirror_tag_node_groups_and_overrides() -> None:
    profile = cloud_profile("aws", **{
        "images.mirror": "registry.corp.example:5000/ghcr", "images.tag": "v9",
        "sizing.nodeGroups": {"label": "pool", "gpu": "a100"},
        "services": {"admin": {"values": {"replicaCount": 7, "podAnnotations": {"team": "sre"}}}}})
    guard = _release(profile, "guard").values
    assert guard["image"]["repository"] == "registry.corp.example:5000/ghcr/highflame-ai/release-highflame-guard"
    assert guard["image"]["tag"] == "v9"
    assert guard["nodeSelector"] == {"pool": "a100"}
    admin = _release(profile, "admin").values
    assert admin["replicaCount"] == 7 and admin["podAnnotations"] == {"team": "sre"}
    assert admin["fullnameOverride"] == "highflame-admin"  # the override touched only its keys
    secret = next(s for s in prerequisite_secrets(profile, load_catalog()) if s.name == "highflame-registry-secret")
    data = materialize(secret, _resolver({}))
    assert "registry.corp.example:5000" in json.loads(data[".dockerconfigjson"])["auths"]


def test_an_override_for_an_unknown_service_is_refused() -> None:
    with pytest.raises(MissingSetting, match=r"services\.adminn"):
        service_releases(cloud_profile("aws", services={"adminn": {"values": {}}}))


def test_hosts_need_a_domain() -> None:
    with pytest.raises(MissingSetting, match=r"ingress\.domain"):
        service_releases(cloud_profile("existing", **{"ingress.domain": None}))


def _resolver(cluster: dict[str, str]) -> Any:
    def resolve(ref: str) -> str:
        kind, _, target = ref.partition(":")
        if kind == "env":
            return os.environ[target]
        if kind == "k8s":
            return cluster[target]
        if kind == "file":  # the example profiles' own files are not on this machine
            path = Path(target).expanduser()
            return path.read_text() if path.is_file() else f"<contents of {target}>"
        raise AssertionError(f"unexpected reference {ref}")
    return resolve


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure", "existing", "sandbox"])
def test_secrets_reach_env_secrets_and_never_values(cloud: str, tmp_path: Path) -> None:
    license_jwt, public_pem = tmp_path / "license.jwt", tmp_path / "public.pem"
    license_jwt.write_text("eyJCanary-license-jwt")
    public_pem.write_text("-----BEGIN PUBLIC KEY-----Canary-license-key")
    profile = cloud_profile(cloud, **{"platform.license": {"jwt": f"file:{license_jwt}",
                                                           "publicKey": f"file:{public_pem}"}})
    catalog = load_catalog()
    releases = service_releases(profile)
    values_text = json.dumps([r.values for r in releases])
    for canary in CANARIES.values():
        assert canary not in values_text
    assert "env:HF_CANARY" not in values_text and str(tmp_path) not in values_text
    assert "Canary-license" not in values_text  # neither the references nor what they hold travel in values
    cluster = {}
    for spec in generated_secrets(catalog):
        cluster.update({f"{spec.name}/{k}": v for k, v in generate(spec).items()})
    data: dict[str, str] = {}
    for spec in [*env_secrets(profile), *prerequisite_secrets(profile, catalog)]:
        data.update({f"{spec.name}/{k}": v for k, v in materialize(spec, _resolver(cluster)).items()})
    joined = json.dumps(data)
    for canary in [*CANARIES.values(), "eyJCanary-license-jwt", "Canary-license-key"]:
        assert canary in joined, f"{canary} reaches no Secret"
    assert data["highflame-admin-env/HIGHFLAME_INTERNAL_SERVICE_SECRET"] == \
        cluster["highflame-platform-secrets/internal-service-secret"]
    # Redis' password reaches REDIS_PASS as is and the connection URL percent-encoded.
    assert data["highflame-authn-env/REDIS_PASS"] == CANARIES["HF_CANARY_REDIS"]
    assert data["highflame-redteam-env/REDIS_CONN_STR"].endswith("Canary%2Fredis%40pw%2342@" +
                                                                  profile.redis.endpoints[0])
    for generated in cluster.values():
        assert generated not in values_text


def test_prerequisites_and_what_a_real_install_still_needs() -> None:
    catalog = load_catalog()
    profile = cloud_profile("aws")
    names = [s.name for s in prerequisite_secrets(profile, catalog)]
    assert names == ["highflame-registry-secret", "highflame-license", "highflame-goff"]
    lic = next(s for s in prerequisite_secrets(profile, catalog) if s.name == "highflame-license")
    assert lic.references == ["file:~/.config/highflame/license.jwt", "file:~/.config/highflame/public.pem"]
    bare = cloud_profile("aws", **{"platform.license": {}})
    assert any(m.startswith("platform.license.jwt") for m in missing_inputs(bare, catalog))
    assert missing_inputs(profile, catalog) == []
    # Without a license Secret, admin still mounts it (required): the pod waits rather than runs unlicensed.
    assert {"name": "license", "secret": {"secretName": "highflame-license", "optional": False}} in \
        _release(bare, "admin").values["volumes"]
    # The GCP credential is optional: no Secret, no mount.
    assert not _release(profile, "shield").values["volumes"]
