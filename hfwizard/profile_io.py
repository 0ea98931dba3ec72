"""Reading and writing profiles: parse, migrate, apply presets, validate, and export with comments kept."""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.parser import RoundTripParser

from hfwizard.errors import ProfileError
from hfwizard.files import PROFILE_LIMIT, read_bounded
from hfwizard.profile import API_VERSION, KIND, InstallProfile, secret_paths
from hfwizard.state import atomic_write

MAX_BYTES = PROFILE_LIMIT
MAX_DEPTH = 64  # a profile is about five levels deep
MAX_ALIASES = 256
MAX_NODES = 100_000  # values after alias expansion; a full profile has a few hundred
MAX_NUMBER_DIGITS = 100  # Python refuses ints over 4,300 digits with a bare ValueError
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNER_PAIR = re.compile(r"\[\]|\{\}")
_QUOTED_OR_COMMENT = re.compile(r"'[^'\n]*'|\"(?:[^\"\\\n]|\\.)*\"|(?:^|\s)#[^\n]*", re.MULTILINE)
_NUMBER = re.compile(r"^[-+]?(?:[0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)$")
OLD_VERSIONS = {"hfwizard/v1alpha1"}
_SECRET_PATHS = secret_paths()


@dataclass
class LoadedProfile:
    """A validated profile plus the YAML document it came from (kept for its comments)."""

    profile: InstallProfile
    document: CommentedMap | None = None
    source: str = "<profile>"
    notes: list[str] = field(default_factory=list)  # what a migration changed, for the operator


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    return y


# ---- reading -------------------------------------------------------------------------------------


def load_profile(path: str | Path) -> LoadedProfile:
    p = Path(path).expanduser()
    if not os.path.lexists(p):
        raise ProfileError(f"profile {p} does not exist",
                           remedy="check the path, or run `hfwizard` to make one") from None
    raw = read_bounded(p, what="profile", limit=MAX_BYTES, error=ProfileError)
    return parse_profile(raw, source=str(p))


def parse_profile(raw: bytes | str, source: str = "<profile>") -> LoadedProfile:
    """Parse and validate profile text; every problem raises ProfileError naming the field."""
    doc = parse_yaml(raw, source)
    data = to_plain(doc)
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a profile is a YAML mapping (apiVersion, kind, target ...), "
                           f"not a {type(data).__name__}")
    data, notes = migrate(data, source)
    if notes:
        doc = None  # the old layout's comments no longer line up with the new keys
    profile = validate(data, source)
    return LoadedProfile(profile, doc if isinstance(doc, CommentedMap) else None, source, notes)


def parse_yaml(raw: bytes | str, source: str) -> Any:
    if isinstance(raw, bytes):
        if len(raw) > MAX_BYTES:
            raise ProfileError(f"{source}: {len(raw)} bytes is too large for a profile (limit {MAX_BYTES})")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProfileError(f"{source}: not UTF-8 text (bad byte at offset {exc.start}); "
                               "a profile is a YAML file") from None
    else:
        text = raw
    if "\x00" in text:
        raise ProfileError(f"{source}: contains NUL bytes; a profile is a YAML text file")
    try:
        return _bounded_load(text, source)
    except ProfileError:
        raise
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ProfileError(f"{source}: not valid YAML{where}: {problem}",
                           remedy="fix the YAML syntax there (indentation, quotes, a stray ':')") from None
    except Exception as exc:
        # ruamel raises plain errors (IndexError, ValueError, RecursionError ...) for some malformed
        # inputs; to the operator they are all the same: the file is not YAML we can read.
        raise ProfileError(f"{source}: not valid YAML ({type(exc).__name__} while parsing)",
                           remedy="check the file is the YAML profile you meant") from None


def _flow_depth(text: str) -> int:
    """How deep `[`/`{` nest outside quotes and comments, counted up to MAX_DEPTH + 1: a cheap bound
    found before ruamel, whose scanner spends a quarter of a second looking ahead through a thousand
    open brackets. Each pass drops the innermost pairs, at C speed."""
    brackets = _NOT_BRACKET.sub("", _QUOTED_OR_COMMENT.sub("", text))
    depth = 0
    while brackets and depth <= MAX_DEPTH:
        shorter = _INNER_PAIR.sub("", brackets)
        if shorter == brackets:
            break  # unbalanced leftovers: the parser will say where
        brackets, depth = shorter, depth + 1
    return depth


class _BoundedParser(RoundTripParser):
    """ruamel's round-trip parser refusing, event by event as the composer takes them, nesting deeper than
    MAX_DEPTH, more than MAX_ALIASES aliases and numbers too long to convert. The composer recurses once per
    level and the constructor converts numbers only once the whole document is composed, so a document is
    refused before either goes wrong, in one pass over the text (a separate scan first doubled the parse)."""

    def __init__(self, loader: Any, source: str) -> None:
        super().__init__(loader=loader)
        self.source = source
        self.depth = self.aliases = 0

    def get_event(self) -> Any:
        event = super().get_event()
        kind = type(event).__name__
        if kind in ("MappingStartEvent", "SequenceStartEvent"):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ProfileError(f"{self.source}: nested over {MAX_DEPTH} levels deep{_at(event)}",
                                   remedy="a profile is a few levels deep; check the file is a profile")
        elif kind in ("MappingEndEvent", "SequenceEndEvent"):
            self.depth -= 1
        elif kind == "AliasEvent":
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise ProfileError(f"{self.source}: over {MAX_ALIASES} YAML aliases (*name){_at(event)}",
                                   remedy="write the values out instead of repeating anchors")
        elif kind == "ScalarEvent" and event.style is None and len(event.value) > MAX_NUMBER_DIGITS \
                and _NUMBER.match(event.value):
            raise ProfileError(f"{self.source}: a number of {len(event.value)} digits{_at(event)} is too long",
                               remedy="no field takes a number that large; check the value")
        return event


def _bounded_load(text: str, source: str) -> Any:
    """The document, read by _yaml()'s settings through _BoundedParser; flow brackets too deep for ruamel's
    scanner to look through cheaply are refused before it starts."""
    if _flow_depth(text) > MAX_DEPTH:
        raise ProfileError(f"{source}: brackets nested over {MAX_DEPTH} levels deep",
                           remedy="a profile is a few levels deep; check the file is a profile")
    y = _yaml()
    y.Parser = functools.partial(_BoundedParser, source=source)
    return y.load(text)


def _at(event: Any) -> str:
    mark = getattr(event, "start_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def to_plain(node: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """ruamel's commented nodes to plain dicts, lists and scalars (pydantic validates plain data).
    Aliases make a shared node appear many times: `budget` bounds how many nodes the expansion makes."""
    if depth > MAX_DEPTH:
        raise ProfileError(f"profile is nested too deeply (over {MAX_DEPTH} levels)")
    budget = [MAX_NODES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise ProfileError(f"profile expands to over {MAX_NODES} values (YAML aliases repeating anchors?)",
                           remedy="a profile holds a few hundred values; write them out without aliases")
    if isinstance(node, dict):
        return {(str(k) if not isinstance(k, str | int | float | bool) or isinstance(k, bool) else k):
                to_plain(v, depth + 1, budget) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [to_plain(v, depth + 1, budget) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if node is None:
        return None
    return str(node)  # timestamps and other YAML scalars: as text, the model decides


def migrate(data: dict[str, Any], source: str = "<profile>") -> tuple[dict[str, Any], list[str]]:
    """Bring an older profile to hfwizard/v1, saying what changed; refuse versions we do not know."""
    version = data.get("apiVersion")
    if version is None:
        raise ProfileError(f"{source}: apiVersion is missing", [f"apiVersion: add `apiVersion: {API_VERSION}`"])
    if data.get("kind", KIND) != KIND:
        raise ProfileError(f"{source}: kind is {data.get('kind')!r}", [f"kind: must be {KIND}"])
    if version == API_VERSION:
        return data, []
    if version not in OLD_VERSIONS:
        raise ProfileError(
            f"{source}: apiVersion {str(version)[:60]!r} is not one this hfwizard reads",
            [f"apiVersion: must be {API_VERSION} (or an older {', '.join(sorted(OLD_VERSIONS))}, migrated)"],
            remedy="upgrade hfwizard if the profile came from a newer one")
    data = copy.deepcopy(data)
    notes: list[str] = []
    # v1alpha1 -> v1: `cluster` became `target` (its `name` became `cluster`), Redis took a list of
    # endpoints, and the flat node sizing moved under sizing.nodes.
    if "cluster" in data and isinstance(data["cluster"], dict):
        old = data.pop("cluster")
        if "name" in old:
            old["cluster"] = old.pop("name")
        data["target"] = old
        notes.append("`cluster` is now `target`, and `cluster.name` is `target.cluster`")
    redis = data.get("redis")
    if isinstance(redis, dict) and "endpoint" in redis:
        redis["endpoints"] = [redis.pop("endpoint")]
        notes.append("`redis.endpoint` is now the list `redis.endpoints`")
    sizing = data.get("sizing")
    if isinstance(sizing, dict):
        moved = {old: new for old, new in (("nodeCount", "count"), ("nodeCores", "cores"),
                                           ("nodeMemoryGiB", "memoryGiB")) if old in sizing}
        if moved:
            nodes = sizing.setdefault("nodes", {})
            for old, new in moved.items():
                nodes[new] = sizing.pop(old)
            notes.append("`sizing." + "`, `sizing.".join(moved) + "` moved under `sizing.nodes`")
    data["apiVersion"] = API_VERSION
    notes.insert(0, f"migrated {source} from {version} to {API_VERSION}")
    return data, notes


def load_preset(name: str) -> dict[str, Any]:
    """A sizing preset's data (`sizing` and `modules`) from the bundled profiles/presets."""
    return copy.deepcopy(_read_preset(name))


@functools.cache
def _read_preset(name: str) -> dict[str, Any]:
    from importlib import resources  # only when a preset is named: every command imports this module

    try:
        text = resources.files("hfwizard.profiles").joinpath("presets", f"{name}.yaml").read_text("utf-8")
    except FileNotFoundError:
        raise ProfileError(f"sizing.preset: no preset named {name!r}",
                           ["sizing.preset: must be small, medium or large"]) from None
    data = to_plain(_yaml().load(text))
    return {k: data.get(k, {}) for k in ("sizing", "modules")}


@functools.cache
def _preset_names() -> tuple[str, ...]:
    from importlib import resources

    folder = resources.files("hfwizard.profiles").joinpath("presets")
    return tuple(sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")))


def preset_names() -> list[str]:
    return list(_preset_names())


def _merge_under(base: Any, top: Any) -> Any:
    """`top` wins; mappings merge key by key."""
    if isinstance(base, dict) and isinstance(top, dict):
        out = dict(base)
        for k, v in top.items():
            out[k] = _merge_under(base.get(k), v) if k in base else v
        return out
    return top


def apply_preset(data: dict[str, Any]) -> dict[str, Any]:
    sizing = data.get("sizing")
    preset = sizing.get("preset") if isinstance(sizing, dict) else None
    if not isinstance(preset, str) or preset not in preset_names():
        return data  # a bad preset name is reported by validation, on the field
    return _merge_under(load_preset(preset), data)


def validate(data: dict[str, Any], source: str = "<profile>") -> InstallProfile:
    try:
        return InstallProfile.model_validate(apply_preset(data))
    except ValidationError as exc:
        problems = format_errors(exc)
        raise ProfileError(f"{source}: {len(problems)} problem{'s' * (len(problems) != 1)} in the profile",
                           problems, remedy="fix the fields named above and run again") from None


# What each pattern in the model asks for, in words: an operator never sees a regular expression.
# A pattern missing here gets a plain fallback (tests/test_profile.py checks every model pattern is listed).
PATTERN_WORDS: dict[str, str] = {
    r"^([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$":
        "must be a host name such as highflame.example.com: letters, digits and dashes, parts joined by dots",
    r"^([a-z0-9.-]+/)?[A-Za-z0-9._-]+$": "must be a name, optionally after a registry host and a slash",
    r"^(\S+\s+){4}\S+$": "must be a cron schedule of five fields, such as 0 3 * * *",
    r"^(https?|oci)://\S+$": "must be a URL starting with https://, http:// or oci://",
    r"^(internet-facing|internal)$": "must be internet-facing or internal",
    r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$": "must be a Kubernetes quantity such as 200Gi, 512Mi or 4",
    r"^[0-9]+(\.[0-9]+){0,2}$": "must be a version such as 17.2",
    r"^[0-9]{4}\.[0-9]{2}(\.[0-9]+)?$": "must be a Highflame release such as 2026.02",
    r"^[0-9a-fA-F-]{36}$": "must be a GUID such as 0a1b2c3d-0000-4000-8000-0123456789ab (36 characters)",
    r"^[A-Za-z0-9-]{1,32}$": "must be 1–32 letters, digits or dashes",
    r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$": "must be a registry such as mirror.example.com:5000/ghcr",
    r"^[A-Za-z0-9.-]+:[0-9]{1,5}$": "must be host:port, such as redis-0.example.com:6379",
    r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,99}$":
        "must start with a letter or digit, then letters, digits, dashes, dots or underscores (up to 100)",
    r"^[A-Za-z0-9_-]{1,64}$": "must be 1–64 letters, digits, dashes or underscores",
    r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$":
        "must start with a letter or underscore, then letters, digits, _, $ or - (up to 63)",
    r"^[A-Za-z_][A-Za-z0-9_$.@-]{0,62}$":
        "must start with a letter or underscore, then letters, digits, _, $, ., @ or - (up to 63)",
    r"^[\w][\w.-]{0,127}$": "must be an image tag: letters, digits, _, . and - (up to 128)",
    r"^[^@\s]+@[a-z0-9.-]+\.iam\.gserviceaccount\.com$":
        "must be a Google service account such as name@project.iam.gserviceaccount.com",
    r"^[a-z0-9-]+$": "must be lowercase letters, digits and dashes, such as us-east-1",
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$":
        "must be lowercase letters, digits and dashes, starting and ending with a letter or digit",
    r"^[a-z0-9]+([._/-][a-z0-9]+)*$": "must be lowercase letters and digits, parts joined by . _ / or -",
    r"^[a-z0-9][-a-z0-9]{0,40}$": "must be lowercase letters, digits and dashes (up to 41)",
    r"^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$":
        "must be a bucket name: 3–223 lowercase letters, digits, dots, dashes or underscores, "
        "starting and ending with a letter or digit",
    r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$": "must be lowercase letters, digits and dashes, starting with a letter",
    r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$":
        "must be a GCP project id: 6–30 lowercase letters, digits and dashes, starting with a letter",
    r"^[a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com$":
        "must be a Google service account such as installer@acme-prod.iam.gserviceaccount.com",
    r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]+$":
        "must be an ACM certificate ARN such as arn:aws:acm:us-east-1:123456789012:certificate/<id>",
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$":
        "must be an IAM role ARN such as arn:aws:iam::123456789012:role/highflame-installer",
    r"^https://[^\s/]+/?$": "must be https:// and a host, such as https://login.microsoftonline.us",
    r"^https?://\S+$": "must be a URL starting with https:// or http://",
}
_KIND_WORDS = {
    "int_parsing": "enter a whole number",
    "int_from_float": "enter a whole number",
    "float_parsing": "enter a number",
    "int_type": "enter a whole number",
    "float_type": "enter a number",
    "bool_parsing": "answer yes or no (true / false)",
}


def _words(kind: str, err: Any, msg: str) -> str:
    """The message an operator reads: a pattern or a parse error said in words, never as a regex."""
    if kind == "string_pattern_mismatch":
        pattern = str((err.get("ctx") or {}).get("pattern", ""))
        return PATTERN_WORDS.get(pattern, "has characters or a shape not allowed here")
    if kind == "enum":
        return f"must be one of {(err.get('ctx') or {}).get('expected', '')}".rstrip()
    return _KIND_WORDS.get(kind, msg)


def format_errors(exc: ValidationError, model: type[BaseModel] = InstallProfile) -> list[str]:
    """One line per problem: the field's YAML path, the value (unless secret), and what is allowed."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        path = _dotted(err["loc"])
        kind = err["type"]
        msg = _words(kind, err, str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, "))
        field_model, info = _field_at(model, loc)
        if kind == "extra_forbidden":
            allowed = sorted(f.alias or n for n, f in field_model.model_fields.items()) if field_model else []
            lines.append(f"{path}: unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else ""))
            continue
        secret = any(path == s or path.startswith(s + ".") or path.startswith(s + "[") for s in _SECRET_PATHS)
        shown = ""
        if kind not in ("value_error", "missing", "model_type", "dict_type") and not secret:
            shown = f" (got {_short(err.get('input'))})"
        # A rule that already says what the field is (an install's "required: ...") needs no docstring after it.
        hint = f" — {info}" if info and not msg.startswith("required") else ""
        lines.append(f"{path or '(top level)'}: {msg}{shown}{hint}")
    return lines


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in str(part) or "function-" in str(part):
            continue  # pydantic's internal validator names
        else:
            out += ("." if out else "") + str(part)
    return out


def _field_at(model: type[BaseModel], loc: list[str]) -> tuple[type[BaseModel] | None, str | None]:
    """Walk the model along a YAML path: the section model holding the last key, and its docstring."""
    current: type[BaseModel] | None = model
    description: str | None = None
    for i, key in enumerate(loc):
        if current is None:
            return None, None
        fields = {(f.alias or n): f for n, f in current.model_fields.items()}
        f = fields.get(key)
        if f is None:
            return (current, None) if i == len(loc) - 1 else (None, None)
        description = f.description
        nxt = None
        for sub in getattr(f.annotation, "__args__", ()) or (f.annotation,):
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                nxt = sub
        if i == len(loc) - 1:
            return current, description
        current = nxt
    return current, description


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- writing -------------------------------------------------------------------------------------


def profile_data(profile: InstallProfile) -> dict[str, Any]:
    """The profile as YAML-ready data: camelCase keys, unset optional fields left out."""
    return profile.model_dump(mode="json", by_alias=True, exclude_none=True)


def dump_profile(profile: InstallProfile, document: CommentedMap | None = None) -> str:
    """YAML text of `profile`; given the document it was loaded from, its comments and key order stay."""
    data = profile_data(profile)
    doc = _merge_into(document, data) if document is not None else _to_commented(data)
    if document is None:
        doc.yaml_set_start_comment(
            "hfwizard install profile. Secret fields hold references (env:, file:, keyring:, k8s:), never values.")
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    return buf.getvalue()


def save_profile(path: str | Path, profile: InstallProfile, document: CommentedMap | None = None) -> Path:
    p = Path(path).expanduser()
    atomic_write(p, dump_profile(profile, document))
    return p


def _to_commented(data: Any) -> Any:
    if isinstance(data, dict):
        m = CommentedMap()
        for k, v in data.items():
            m[k] = _to_commented(v)
        return m
    if isinstance(data, list):
        return CommentedSeq(_to_commented(v) for v in data)
    return data


def _merge_into(doc: Any, data: Any) -> Any:
    """Update `doc` in place to equal `data`, keeping comments and the order of keys that stay."""
    if isinstance(doc, CommentedMap) and isinstance(data, dict):
        for k in [k for k in doc if k not in data]:
            del doc[k]
        for k, v in data.items():
            doc[k] = _merge_into(doc[k], v) if k in doc else _to_commented(v)
        return doc
    if isinstance(doc, CommentedSeq) and isinstance(data, list):
        # Item by item, in place: a comment on an item is keyed by its index and must stay with it.
        for i, v in enumerate(data):
            if i < len(doc):
                doc[i] = _merge_into(doc[i], v)
            else:
                doc.append(_to_commented(v))
        while len(doc) > len(data):
            doc.pop()
        return doc
    if type(doc) is not type(data) and not isinstance(doc, str | int | float | bool):
        return _to_commented(data)
    # ruamel's scalar types keep quoting and formatting when the value did not change.
    return doc if doc == data and type(doc) is not bool else _to_commented(data)


def profile_hash(profile: InstallProfile) -> str:
    """A stable hash of the answers (the journal records it to notice a changed profile)."""
    blob = json.dumps(profile_data(profile), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def diff_profiles(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """The answers that differ between two profiles' data, as 'path: old -> new' (secrets as references)."""
    out: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        path = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff_profiles(a, b, path + ".")
        elif a != b:
            out.append(f"{path}: {json.dumps(a)} -> {json.dumps(b)}")
    return out

