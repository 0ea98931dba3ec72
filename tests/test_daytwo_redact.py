"""Secret masking: canaries in every form they can take in logs, and keys and tokens by their shape."""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import quote, quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from hfwizard.daytwo.redact import MASK, Redactor, base64_cores
from tests.daytwo_support import assert_no_leak, leaks

CANARY = "canary-pg-7f3a91c2"
ODD = 'c@nary/"pass"+word ü%41'  # characters each encoding treats specially
VALUES = [CANARY, ODD]


def test_the_leak_scanner_sees_every_form() -> None:
    """The scanner the other tests rely on finds each form (or they would pass on any output)."""
    blob = base64.b64encode(b"xx" + CANARY.encode() + b"yy")
    assert leaks(CANARY.encode(), CANARY) == ["clear"]
    assert "base64" in leaks(b"data: " + blob, CANARY)
    assert "url-encoded" in leaks(quote(ODD, safe="").encode(), ODD)
    assert "json-escaped" in leaks(json.dumps({"p": ODD}).encode(), ODD)


def test_clear_url_and_json_forms_are_masked() -> None:
    redactor = Redactor(VALUES)
    lines = [
        f"connecting with password {CANARY} to pg",
        f"GET /login?user=robot&pw={quote(ODD, safe='')}&next=/",
        f"form: pw={quote_plus(ODD)}",
        f"lower-case escapes: {quote(ODD, safe='').lower()}",
        json.dumps({"config": {"password": ODD, "note": "kept"}}),
        json.dumps({"password": ODD}, ensure_ascii=False),
        json.dumps(ODD).replace("/", "\\/"),
    ]
    text = "\n".join(lines).encode()
    out = redactor.redact(text)
    assert_no_leak(out, VALUES, "the redacted text")
    assert out.count(MASK) >= len(lines)
    assert b"connecting with password" in out and b'"note": "kept"' in out and b"/login?user=robot" in out


def test_base64_forms_are_masked_alone_and_inside_larger_blobs() -> None:
    redactor = Redactor(VALUES)
    for value in VALUES:
        raw = value.encode()
        for lead in range(6):  # every offset within a 3-byte group, twice
            for tail in range(3):
                inner = os.urandom(lead) + b"{\"pw\": \"" + raw + b"\"}" + os.urandom(tail + 5)
                for encode in (base64.b64encode, base64.urlsafe_b64encode):
                    text = b"secretdata: " + encode(inner) + b" end"
                    out = redactor.redact(text)
                    assert_no_leak(out, [value], f"base64 at lead {lead}, tail {tail}")
                    assert out.startswith(b"secretdata: ") and out.endswith(b" end")
        assert base64.b64encode(raw).rstrip(b"=") not in redactor.redact(base64.b64encode(raw))


def test_base64_that_does_not_decode_as_a_token_is_masked_too() -> None:
    """Blobs glued to other base64-alphabet characters (a URL path) and values too short for the
    decoding pass are caught by the value's own base64 cores."""
    redactor = Redactor([CANARY, "pw1234"])
    for lead in range(3):
        blob = base64.b64encode(b"x" * lead + CANARY.encode() + b"!")
        for prefix in (b"GET /v1/blobs/", b"GET /v1/blobs/a", b"GET /v1/blobs/ab"):
            out = redactor.redact(prefix + blob + b" 200")
            assert_no_leak(out, [CANARY], f"a URL path ({prefix!r}, lead {lead})")
    assert redactor.redact(b"short: " + base64.b64encode(b"pw1234")) == b"short: " + MASK


def test_a_value_encoded_twice_is_masked() -> None:
    """A registry password inside the base64 `auth` of a docker config, itself base64 in a Secret."""
    auth = base64.b64encode(f"robot:{CANARY}".encode()).decode()
    config = json.dumps({"auths": {"ghcr.io": {"username": "robot", "auth": auth}}})
    secret_data = base64.b64encode(config.encode())
    out = Redactor([CANARY]).redact(b".dockerconfigjson: " + secret_data)
    assert_no_leak(out, [CANARY], "a docker config")


def test_key_and_token_shapes_are_masked_without_being_told() -> None:
    jwt = (base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').rstrip(b"=").decode() + "."
           + base64.urlsafe_b64encode(b'{"sub":"user_2abc","exp":1999999999}').rstrip(b"=").decode()
           + ".c2lnbmF0dXJlLWJ5dGVzLWhlcmU")
    shaped = {
        "pem": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n"
               "-----END PRIVATE KEY-----",
        "pem-json": '{"key": "-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEAq7\\n-----END RSA PRIVATE KEY-----"}',
        "pem-cut": "tail of a log: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpY",
        "clerk-secret": "CLERK_SECRET_KEY=sk_live_Zm9vYmFyYmF6cXV4MTIzNDU2",
        "clerk-test": "using sk_test_abcDEF123456ghiJKL",
        "clerk-publishable": "publishable pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA",
        "jwt": f"session {jwt} accepted",
        "aws": "aws_access_key_id AKIAIOSFODNN7EXAMPLE found",
        "password=": "db password=Tr0ub4dor-and-3 connected",
        "token:": 'headers {"X-Auth-Token": "a8f9e7d6c5b4a39281706f5e4d3c2b1a"}',
        "secret:": "clientSecret: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
        "bearer": "Authorization: Bearer abcdef0123456789abcdef",
        "url-credentials": "redis://default:s3cr3t-pass@redis-0:6379/0",
    }
    secrets = ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "MIIEowIBAAKCAQEAq7", "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpY",
               "Zm9vYmFyYmF6cXV4MTIzNDU2", "abcDEF123456ghiJKL", "Y2xlcmsuZXhhbXBsZS50ZXN0JA", jwt,
               "AKIAIOSFODNN7EXAMPLE", "Tr0ub4dor-and-3", "a8f9e7d6c5b4a39281706f5e4d3c2b1a",
               "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "abcdef0123456789abcdef", "s3cr3t-pass"]
    redactor = Redactor()  # no values given: shapes alone
    for (name, text), secret in zip(shaped.items(), secrets, strict=True):
        out = redactor.redact(text.encode())
        assert secret.encode() not in out, f"{name} left its secret: {out!r}"
        assert MASK in out, name
    kept = redactor.redact(shaped["pem"].encode())
    assert kept.startswith(b"-----BEGIN PRIVATE KEY-----") and kept.endswith(b"-----END PRIVATE KEY-----")
    assert redactor.redact(shaped["clerk-secret"].encode()) == b"CLERK_SECRET_KEY=sk_live_" + MASK


def test_what_is_not_secret_stays_readable() -> None:
    redactor = Redactor([CANARY, "short"])
    text = (b"password: env:HFW_CANARY_PG\nsecretKey: file:/run/clerk-key\ntoken: keyring:hfwizard/pull\n"
            b"secretName: highflame-clickhouse-auth\npod gateway-7d9f8b-xk2lp Running (3 restarts)\n"
            b"a short value is not masked: short\nrequest 3f2a1b4c-5d6e-7f80-9a1b-2c3d4e5f6a7b ok\n")
    assert redactor.redact(text) == text
    assert not redactor.contains_secret(text)
    assert len(redactor) == 1


def test_a_multi_line_value_is_masked_line_by_line_too() -> None:
    key = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACBuZXZlcg\n"
           "-----END OPENSSH PRIVATE KEY-----")
    out = Redactor([key]).redact(b"line from a log: b3BlbnNzaC1rZXktdjEAAAAA and QyNTUxOQAAACBuZXZlcg")
    assert b"b3BlbnNzaC1rZXktdjEAAAAA" not in out and b"QyNTUxOQAAACBuZXZlcg" not in out


def test_megabytes_of_logs_with_one_canary_at_the_end() -> None:
    line = b"2026-11-30T04:00:00Z INFO request id=9f1c2b3a4d5e6f708192a3b4c5d6e7f8 path=/api/v1/pods ok\n"
    data = line * 40_000 + b"ERROR auth failed for " + base64.b64encode(b"robot:" + CANARY.encode()) + b"\n"
    out = Redactor(VALUES).redact(data)
    assert out.startswith(line * 40_000)
    assert_no_leak(out[-200:], VALUES, "the end of a large log")


@settings(max_examples=150, deadline=None)
@given(value=st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=6, max_size=40),
       before=st.binary(max_size=20), after=st.binary(max_size=20), urlsafe=st.booleans())
def test_any_value_in_any_base64_blob_is_masked(value: str, before: bytes, after: bytes, urlsafe: bool) -> None:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text = b"log: " + encode(before + value.encode() + after) + b" | clear: " + value.encode()
    out = Redactor([value]).redact(text)
    assert value.encode() not in out
    assert not any(core in out for core in base64_cores(value.encode()))
