"""A leak scanner for the day-two tests, written apart from the redactor so it can catch its mistakes:
it looks for a value in clear, URL-encoded and JSON-escaped, and decodes every base64-looking run at
each of its four possible starts instead of precomputing encodings."""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import quote, unquote, unquote_plus

_RUN = re.compile(rb"[A-Za-z0-9+/_-]{8,}")


def _decodings(data: bytes, depth: int = 2) -> list[bytes]:
    out = []
    for run in _RUN.findall(data):
        for start in range(4):
            chunk = run[start:]
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            for alt in (b"+/", b"-_"):
                try:
                    decoded = base64.b64decode(chunk, altchars=alt)
                except (binascii.Error, ValueError):
                    continue
                out.append(decoded)
                if depth > 1:
                    out.extend(_decodings(decoded, depth - 1))
    return out


def leaks(data: bytes, value: str) -> list[str]:
    """The forms in which `value` can be read out of `data` (empty when it cannot)."""
    raw = value.encode()
    found = []
    if raw in data:
        found.append("clear")
    text = data.decode("utf-8", errors="replace")
    if value not in text and (value in unquote(text) or value in unquote_plus(text)):
        found.append("url-encoded")
    if json.dumps(value)[1:-1] in text and raw not in data:
        found.append("json-escaped")
    if quote(value, safe="").lower() in text.lower() and quote(value, safe="") != value:
        found.append("url-encoded")
    if any(raw in d for d in _decodings(data)):
        found.append("base64")
    return found


def assert_no_leak(data: bytes, values: list[str], where: str) -> None:
    for value in values:
        forms = leaks(data, value)
        assert not forms, f"a secret value is readable in {where} ({', '.join(forms)})"
