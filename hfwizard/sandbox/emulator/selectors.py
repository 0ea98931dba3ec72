"""Label and field selectors as the API server parses them from list and watch queries."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from hfwizard.sandbox.emulator.api import JSON

__all__ = ["field_matcher", "label_matcher"]


def _label_term(part: str) -> Callable[[Mapping[str, str]], bool]:
    if m := re.fullmatch(r"([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)", part):
        key, values = m.group(1), {v.strip() for v in m.group(3).split(",")}
        inside = m.group(2) == "in"
        return lambda labels: (labels.get(key) in values) == inside
    if m := re.fullmatch(r"([^\s!=]+)\s*(!=|==|=)\s*(\S*)", part):
        key, value, equal = m.group(1), m.group(3), m.group(2) != "!="
        return lambda labels: (labels.get(key) == value) == equal
    if part.startswith("!"):
        absent = part[1:].strip()
        return lambda labels: absent not in labels
    return lambda labels: part in labels


def label_matcher(selector: str | None) -> Callable[[Mapping[str, str]], bool]:
    parts = [p.strip() for p in re.split(r",(?![^()]*\))", selector or "") if p.strip()]
    terms = [_label_term(part) for part in parts]
    return lambda labels: all(term(labels) for term in terms)


def field_matcher(selector: str | None) -> Callable[[JSON], bool]:
    if not selector:
        return lambda _obj: True
    terms: list[tuple[list[str], str, bool]] = []
    for part in selector.split(","):
        if m := re.fullmatch(r"\s*([\w.]+)\s*(!=|==|=)\s*(.*?)\s*", part):
            terms.append((m.group(1).split("."), m.group(3), m.group(2) != "!="))

    def lookup(obj: JSON, path: list[str]) -> str:
        value: Any = obj
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        return "" if value is None else str(value)

    return lambda obj: all((lookup(obj, path) == want) == equal for path, want, equal in terms)

