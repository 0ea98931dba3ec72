"""Masking secret values (in clear, base64, URL and JSON forms) and anything shaped like a key or token."""

# A `Redactor` is built from the secret values an install knows (resolved references and generated
# passwords). `redact(data)` finds every place to mask first and rewrites once, so overlapping finds
# (a value inside a JWT inside a URL) merge into one mask. Values are found with `bytes.find` per form,
# which runs at memory speed; a few anchored regular expressions catch keys and tokens of known shapes.
#
# A value inside a larger base64 blob is caught at whatever offset it sits: base64 maps each 3-byte
# group to 4 characters, so the value's encoding at offset 0, 1 or 2 within its group has a fixed core
# of characters that depends on the value alone, and that core is searched for like any other form.
# Long base64-looking tokens are also decoded and searched, which catches a value encoded twice (a
# registry password inside a base64 `auth` inside a base64 docker config).

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = b"[REDACTED]"

# Shorter values would mask ordinary words everywhere; the secrets hfwizard handles are longer.
MIN_VALUE_LEN = 6
# A base64 core shorter than this matches by chance in any large blob.
MIN_CORE_LEN = 6
# Tokens shorter than this are not decoded: too short to carry a value worth finding.
MIN_DECODE_LEN = 16
MAX_NESTING = 2

_B64_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_URLSAFE_TO_B64 = bytes.maketrans(b"-_", b"+/")
_HEX = b"0123456789abcdefABCDEF-"

# Each pattern's group "secret" is what gets masked; what is around it stays for the reader.
_SHAPES: list[re.Pattern[bytes]] = [
    # PEM blocks (keys, certificates), also with JSON-escaped newlines, also cut off before their END.
    re.compile(rb"-----BEGIN [A-Z0-9 ]{1,40}-----(?P<secret>.*?)(?=-----END [A-Z0-9 ]{1,40}-----)"
               rb"|-----BEGIN [A-Z0-9 ]{1,40}-----(?P<cut>(?:[A-Za-z0-9+/=\s]|\\[nr])+)", re.S),
    # Clerk (and Stripe-like) keys: sk_live_..., sk_test_..., pk_live_..., pk_test_...
    # (Patterns start with a literal where they can: the regex engine then skips ahead at C speed,
    # twenty times faster on MBs of logs; the lookbehinds run only where the literal matched.)
    re.compile(rb"k_(?<=[sp]k_)(?<![A-Za-z0-9][sp]k_)(?:live|test)_(?P<secret>[A-Za-z0-9_\-]{6,})"),
    # JSON Web Tokens: header.payload.signature, header and payload base64url JSON objects.
    re.compile(rb"(?P<secret>eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)"),
    # AWS access key ids.
    re.compile(rb"(?P<secret>A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA)[A-Z0-9]{16})"),
    # Credentials in URLs: scheme://user:password@host
    re.compile(rb"://[^\s:/@\"']{1,200}:(?P<secret>[^\s@/\"']{3,200})@"),
]
# Searched for in the lower-cased text: case-insensitive alternations run several times slower.
_LOWER_SHAPES: list[re.Pattern[bytes]] = [
    # Authorization headers.
    re.compile(rb"\b(?:bearer|basic|token)\s+(?P<secret>[a-z0-9+/_.~=-]{12,})"),
    # Long values after key-ish names: password=..., "token": "...", secret: ..., X-Api-Key: ...
    # A secret reference (env:NAME, file:PATH, ...) is kept: it names where a value lives, not the value;
    # so is a Clerk key's prefix, which tells a live key from a test one.
    re.compile(rb"(?:passw(?:or)?d|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
               rb"|credentials?|auth)[a-z0-9_.-]{0,30}[\"']?\s{0,3}[:=]\s{0,3}[\"']?"
               rb"(?!(?:env|file|keyring|k8s):)(?:[sp]k_(?:live|test)_)?(?P<secret>[a-z0-9+/=_\-.~!@#$%^&*]{12,})"),
]
# What a value after a key-ish name looks like when it is a name, not a secret (secretName: tls-cert).
_NAME_LIKE = re.compile(rb"[a-z][a-z.-]*\Z")

_B64_TOKEN = re.compile(rb"[A-Za-z0-9+/_-]{%d,}={0,2}" % MIN_DECODE_LEN)


def base64_cores(value: bytes) -> set[bytes]:
    """The characters of `value`'s base64 that do not depend on its neighbours, at each of the three
    offsets it can have within a 3-byte group, in the standard and the URL-safe alphabet."""
    cores: set[bytes] = set()
    for lead in range(3):
        total = lead + len(value)
        encoded = base64.b64encode(b"\0" * lead + value)
        # Characters before `skip` mix in the bytes ahead of the value; characters from `whole` on
        # mix in the bytes after it (or are padding).
        skip = (0, 2, 3)[lead]
        whole = total * 8 // 6
        core = encoded[skip:whole]
        if len(core) >= MIN_CORE_LEN:
            cores.add(core)
            cores.add(core.translate(_B64_TO_URLSAFE))
    return cores


def text_forms(value: str) -> set[bytes]:
    """`value` as it can appear in text: in clear, URL-encoded, JSON-escaped."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value),
             json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms.add(json.dumps(value)[1:-1].replace("/", "\\/"))
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in list(forms) if "%" in f}
    return {f.encode("utf-8") for f in forms if len(f) >= MIN_VALUE_LEN}


def value_forms(value: str) -> set[bytes]:
    """Every form of `value` the redactor searches for: text forms, and the base64 of each."""
    forms = text_forms(value)
    for form in list(forms):
        forms |= base64_cores(form)
    return forms


class Redactor:
    """Masks the given secret values (in every form `value_forms` lists) and key-shaped tokens."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._needles: list[bytes] = []
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        """Mask `value` from now on. A multi-line value (a PEM key, a JSON credentials file) is also
        masked line by line, since logs often carry one line of it."""
        parts = [value, value.strip()] + [line.strip() for line in value.splitlines()]
        for part in parts:
            if len(part) < MIN_VALUE_LEN or part in self._values:
                continue
            self._values.add(part)
            self._needles.extend(value_forms(part))
        # Longest first: where two forms start at one place, the whole of the longer one is masked.
        self._needles = sorted(set(self._needles), key=len, reverse=True)

    def __len__(self) -> int:
        return len(self._values)

    def redact(self, data: bytes) -> bytes:
        """`data` with every secret form and key-shaped token replaced by `MASK`."""
        spans = self._spans(data)
        if not spans:
            return data
        out = bytearray()
        pos = 0
        for start, end in _merge(spans):
            out += data[pos:start]
            out += MASK
            pos = end
        out += data[pos:]
        return bytes(out)

    def redact_text(self, text: str) -> str:
        return self.redact(text.encode("utf-8")).decode("utf-8", errors="replace")

    def contains_secret(self, data: bytes) -> bool:
        """Whether `redact` would change anything in `data`."""
        return bool(self._spans(data))

    def _spans(self, data: bytes) -> list[tuple[int, int]]:
        spans = _find_all(data, self._needles)
        for pattern in _SHAPES:
            for match in pattern.finditer(data):
                spans.append(match.span("secret" if match.group("secret") is not None else "cut"))
        lowered = data.lower()
        for pattern in _LOWER_SHAPES:
            for match in pattern.finditer(lowered):
                start, end = match.span("secret")
                if pattern is not _LOWER_SHAPES[-1] or not _NAME_LIKE.match(data, start, end):
                    spans.append((start, end))
        if self._values:
            spans.extend(self._encoded_spans(data))
        return spans

    def _encoded_spans(self, data: bytes) -> list[tuple[int, int]]:
        """Spans of base64 tokens in `data` that decode (once, or again inside) to text holding a value.

        The decoded tokens of one level are joined into one buffer, so each form is searched for once
        per level rather than once per token: a log of MBs has tens of thousands of such tokens."""
        owners: list[tuple[int, int]] = []  # the span in `data` each decoded piece came from
        pieces: list[bytes] = []
        for match in _B64_TOKEN.finditer(data):
            decoded = _decode_b64(match.group(0))
            if decoded is not None and len(decoded) >= MIN_VALUE_LEN:
                owners.append(match.span())
                pieces.append(decoded)
        found: list[tuple[int, int]] = []
        for _level in range(MAX_NESTING):
            if not pieces:
                break
            buffer = b"\0".join(pieces)
            starts = list(itertools.accumulate((len(p) + 1 for p in pieces[:-1]), initial=0))
            hit = {bisect.bisect_right(starts, start) - 1 for start, _ in _find_all(buffer, self._needles)}
            found.extend(owners[i] for i in hit)
            next_owners, next_pieces = [], []
            for match in _B64_TOKEN.finditer(buffer):
                index = bisect.bisect_right(starts, match.start()) - 1
                decoded = _decode_b64(match.group(0)) if index not in hit else None
                if decoded is not None and len(decoded) >= MIN_VALUE_LEN:
                    next_owners.append(owners[index])
                    next_pieces.append(decoded)
            owners, pieces = next_owners, next_pieces
        return found


def _find_all(data: bytes, needles: list[bytes]) -> list[tuple[int, int]]:
    spans = []
    for needle in needles:
        at = data.find(needle)
        while at >= 0:
            spans.append((at, at + len(needle)))
            at = data.find(needle, at + 1)
    return spans


def _decode_b64(token: bytes) -> bytes | None:
    # Hex ids and UUIDs are the commonest long tokens in logs; base64 of text is never hex alone.
    if not token.translate(None, _HEX):
        return None
    token = token.rstrip(b"=")
    if len(token) % 4 == 1:
        token = token[:-1]  # a stray character after the blob: decode what stands before it
    token = token.translate(_URLSAFE_TO_B64)
    try:
        return binascii.a2b_base64(token + b"=" * (-len(token) % 4), strict_mode=True)
    except binascii.Error:
        return None


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
