"""The install profile: presets, examples, validation messages, migration and round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from hfwizard.errors import ProfileError
from hfwizard.profile import InstallProfile, clerk_frontend_host
from hfwizard.profile_io import (
    diff_profiles,
    dump_profile,
    load_profile,
    parse_profile,
    preset_names,
    profile_data,
    profile_hash,
    save_profile,
)

ROOT = Path(__file__).resolve().parent.parent
PROFILES = sorted((ROOT / "profiles").glob("*.yaml"))
PRESETS = sorted((ROOT / "profiles" / "presets").glob("*.yaml"))
HEAD = "apiVersion: hfwizard/v1\nkind: InstallProfile\n"


def problems(text: str) -> str:
    with pytest.raises(ProfileError) as info:
        parse_profile(text)
    return str(info.value)


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_example_profile_validates(path: Path) -> None:
    loaded = load_profile(path)
    assert loaded.profile.api_version == "hfwizard/v1"
    assert loaded.notes == []


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_every_preset_validates_as_sizing_and_modules(path: Path) -> None:
    name = path.stem
    profile = parse_profile(f"{HEAD}sizing:\n  preset: {name}\n").profile
    assert profile.sizing.preset == name
    assert profile.sizing.nodes.count >= 6


def test_presets_are_the_three_documented() -> None:
    assert preset_names() == ["large", "medium", "small"]


def test_explicit_fields_win_over_the_preset() -> None:
    p = parse_profile(f"{HEAD}sizing:\n  preset: large\n  nodes:\n    count: 20\n").profile
    assert p.sizing.nodes.count == 20
    assert p.sizing.nodes.cores == 16  # from the preset


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_round_trip_load_export_load_is_equal_and_keeps_comments(path: Path, tmp_path: Path) -> None:
    first = load_profile(path)
    out = tmp_path / "exported.yaml"
    save_profile(out, first.profile, first.document)
    second = load_profile(out)
    assert second.profile == first.profile
    original_comments = [line.split("#", 1)[1].strip() for line in path.read_text().splitlines() if "#" in line]
    exported = out.read_text()
    for comment in original_comments:
        assert comment in exported, f"comment lost on export: {comment!r}"
    assert out.stat().st_mode & 0o777 == 0o600


def test_export_of_a_changed_profile_keeps_comments_and_changes_the_value(tmp_path: Path) -> None:
    loaded = load_profile(ROOT / "profiles" / "aws.yaml")
    changed = loaded.profile.model_copy(deep=True)
    changed.target.namespace = "hf-prod"
    text = dump_profile(changed, loaded.document)
    assert "# EKS cluster name" in text
    assert "namespace: hf-prod" in text
    assert parse_profile(text).profile == changed


def test_out_of_range_sizing_names_field_value_and_allowed_range() -> None:
    text = problems(f"{HEAD}sizing:\n  nodes:\n    count: 5\n    cores: 4\n    memoryGiB: 64\n")
    assert "sizing.nodes.count" in text and "(got 5)" in text and "at least 6" in text
    assert "sizing.nodes.cores" in text and "(got 4)" in text and "8–16" in text
    assert "sizing.nodes.memoryGiB" in text and "(got 64)" in text and "16–32" in text


def test_unknown_key_lists_what_is_allowed() -> None:
    text = problems(f"{HEAD}postgres:\n  hots: db\n")
    assert "postgres.hots: unknown key" in text
    assert "host" in text and "sslmode" in text


def test_literal_secret_is_refused_without_echoing_it() -> None:
    text = problems(f"{HEAD}postgres:\n  password: Sup3rS3cretCanary\n")
    assert "postgres.password" in text and "secret reference" in text
    assert "Sup3rS3cretCanary" not in text


def test_unknown_key_under_a_secret_never_echoes_the_value() -> None:
    text = problems(f"{HEAD}clerk:\n  secretKeyValue: sk_live_CANARY123\n")
    assert "clerk.secretKeyValue: unknown key" in text
    assert "CANARY123" not in text


@pytest.mark.parametrize("ref", ["env:", "env:1BAD", "keyring:onlyservice", "k8s:Upper/key", "k8s:name", "vault:x"])
def test_malformed_references_are_refused(ref: str) -> None:
    assert "postgres.password" in problems(f"{HEAD}postgres:\n  password: '{ref}'\n")


def test_cloud_targets_need_region_and_cluster() -> None:
    text = problems(f"{HEAD}target:\n  cloud: aws\n")
    assert "target" in text and "region" in text and "cluster" in text


def test_a_tls_source_the_ingress_class_cannot_serve_is_refused_in_a_file() -> None:
    aws = "target: {cloud: aws, region: us-east-1, cluster: prod}\n"
    text = problems(f"{HEAD}{aws}ingress:\n  domain: hf.example.com\n  tls: {{issuer: letsencrypt}}\n")
    assert "ingress.tls.issuer" in text and "takes TLS only from an ACM certificate" in text
    text = problems(f"{HEAD}ingress:\n  className: alb\n  tls: {{existingSecret: hf-tls}}\n")
    assert "tls.existingSecret" in text and "Kubernetes TLS Secret" in text
    parse_profile(f"{HEAD}ingress:\n  className: nginx\n  tls: {{existingSecret: hf-tls}}\n")


def test_pdb_that_would_block_drains_is_refused() -> None:
    text = problems(f"{HEAD}modules:\n  policy:\n    hpa: {{minReplicas: 2}}\n    pdb: {{minAvailable: 2}}\n")
    assert "modules.policy" in text and "minAvailable" in text


def test_clerk_publishable_key_decodes_to_its_frontend_host() -> None:
    assert clerk_frontend_host("pk_live_Y2xlcmsuYWNtZS5leGFtcGxlLmNvbSQ") == "clerk.acme.example.com"
    assert "clerk.publishableKey" in problems(f"{HEAD}clerk:\n  publishableKey: pk_live_bm90LWEtaG9zdA\n")


def test_remote_chart_needs_a_version() -> None:
    assert "charts.highflame" in problems(f"{HEAD}charts:\n  highflame:\n    ref: oci://ghcr.io/x/highflame\n")


def test_unknown_api_version_is_refused_and_old_one_migrated() -> None:
    assert "hfwizard/v9" in problems("apiVersion: hfwizard/v9\nkind: InstallProfile\n")
    assert "apiVersion is missing" in problems("kind: InstallProfile\n")
    old = parse_profile("apiVersion: hfwizard/v1alpha1\nkind: InstallProfile\n"
                        "cluster: {cloud: existing, name: legacy}\nredis: {endpoint: 'r1:6379'}\n"
                        "sizing: {nodeCount: 7, nodeCores: 12}\n")
    assert old.profile.target.cluster == "legacy"
    assert old.profile.redis.endpoints == ["r1:6379"]
    assert (old.profile.sizing.nodes.count, old.profile.sizing.nodes.cores) == (7, 12)
    assert any("redis.endpoints" in n for n in old.notes)
    assert old.notes[0].startswith("migrated")


def test_broken_yaml_and_junk_name_what_is_wrong() -> None:
    assert "line 2" in problems("a: [1, 2\nb: :")
    with pytest.raises(ProfileError, match="not UTF-8"):
        parse_profile(b"\xff\xfe\x00\x01")
    assert "mapping" in problems("- just\n- a list\n")


def test_hash_and_diff_name_changed_answers() -> None:
    a = InstallProfile()
    b = a.model_copy(deep=True)
    b.sizing.nodes.count = 9
    assert profile_hash(a) != profile_hash(b)
    assert diff_profiles(profile_data(a), profile_data(b)) == ["sizing.nodes.count: 6 -> 9"]


def _sections() -> list[type]:
    from pydantic import BaseModel

    from hfwizard import profile
    from hfwizard.platform import settings

    found = {obj for mod in (profile, settings) for obj in vars(mod).values()
             if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == mod.__name__
             and obj.__pydantic_fields__}
    return sorted(found, key=lambda c: c.__name__)


@pytest.mark.parametrize("section", _sections(), ids=lambda c: c.__name__)
def test_a_sections_unvalidated_default_equals_its_validated_one(section: type) -> None:
    # Fields default to `default_of(Section)`, made without validation so importing builds no validator.
    from hfwizard.platform.settings import default_of

    made = default_of(section)  # type: ignore[type-var]
    assert made == section() == section.model_validate(made.model_dump(by_alias=True))  # type: ignore[attr-defined]


def test_every_field_keeps_its_docstring_as_description() -> None:
    from hfwizard.profile import Images, InstallOptions, PreflightOptions

    assert Images.model_fields["tag"].description == "Image tag; default: the chart's appVersion."
    assert InstallOptions.model_fields["max_parallel"].description.startswith("At most this many")  # type: ignore[union-attr]
    assert "short-lived pod" in (PreflightOptions.model_fields["cluster_outbound"].description or "")
    schema = InstallProfile.model_json_schema(by_alias=True)
    count = schema["$defs"]["Nodes"]["properties"]["count"]
    assert count["description"] == "Worker nodes; the platform needs at least 6."


@pytest.mark.parametrize("tag", ["-bad", "a" * 129, "two words", "é" * 129])
def test_a_bad_image_tag_fails_as_a_pattern_mismatch(tag: str) -> None:
    # The tag's pattern is compiled on first use, with the same engine and the same error as `pattern=`.
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        InstallProfile.model_validate({"images": {"tag": tag}})
    (err,) = info.value.errors()
    assert (err["type"], err["msg"], err["loc"]) == (
        "string_pattern_mismatch", "String should match pattern '^[\\w][\\w.-]{0,127}$'", ("images", "tag"))
    assert "images.tag: must be an image tag: letters, digits" in problems(HEAD + f"images: {{tag: '{tag}'}}\n")
    assert InstallProfile.model_validate({"images": {"tag": "é" + "1.2-rc_3" * 15}}).images.tag


def test_the_json_schema_keeps_the_tag_pattern_and_the_section_defaults() -> None:
    schema = InstallProfile.model_json_schema(by_alias=True, mode="validation")
    assert schema["$defs"]["Images"]["properties"]["tag"]["anyOf"][0] == {"pattern": "^[\\w][\\w.-]{0,127}$",
                                                                           "type": "string"}
    assert schema["properties"]["sizing"]["default"]["nodes"] == {"count": 6, "cores": 8, "memoryGiB": 32}
