"""The wizard's draft profile: answers saved as they are made, the step reached, and per-step validation."""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfwizard.state import atomic_write
from hfwizard.store.install_dir import InstallDir

# The profile model (pydantic, a quarter second to build) is imported where it is used: the wizard's
# Welcome screen lists drafts and their steps without it, so the first screen comes sooner.
if TYPE_CHECKING:
    from hfwizard.profile import InstallProfile


# The question steps, in order; the TUI and plain mode walk the same list.
STEPS: tuple[str, ...] = ("target", "credentials", "cluster", "data", "sizing", "modules", "clerk",
                          "ingress", "review")

# Where a wizard can stop and come back to: the question steps and the preflight after them.
POSITIONS: tuple[str, ...] = (*STEPS, "preflight")

# Which profile paths each step answers, so a step shows only its own problems. A leading "=" means
# that exact path only: a section-level rule (`target` needs region and cluster) belongs to the step
# that asks for the fields it names.
OWNED: dict[str, tuple[str, ...]] = {
    "target": ("metadata", "target.cloud", "target.namespace", "target.release"),
    "credentials": ("credentials",),
    "cluster": ("target.region", "target.cluster", "target.kubeconfig", "target.context", "=target"),
    "data": ("postgres", "redis", "clickhouse"),
    "sizing": ("sizing",),
    "modules": ("modules", "images"),
    "clerk": ("clerk",),
    "ingress": ("ingress",),
    "review": ("",),
}


@dataclass(frozen=True)
class Problem:
    """One validation problem: the field's YAML path and the `format_errors` line for it."""

    path: str
    line: str

    @property
    def reason(self) -> str:
        """The line without its leading path (shown beside the field, which is already labelled)."""
        head, sep, rest = self.line.partition(": ")
        return rest if sep and head == (self.path or "(top level)") else self.line


_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*): (.*)$", re.DOTALL)


def problems(data: dict[str, Any]) -> list[Problem]:
    """Validate the whole draft with the profile model, the install's rules on (`complete_context`);
    one Problem per `format_errors` line, placed on the field a cross-field rule names."""
    from pydantic import ValidationError

    from hfwizard.profile import InstallProfile
    from hfwizard.profile_io import apply_preset, format_errors

    try:
        InstallProfile.validate_complete(apply_preset(data))
    except ValidationError as exc:
        return [_placed(line) for line in format_errors(exc)]
    return []


def _placed(line: str) -> Problem:
    path, sep, rest = line.partition(": ")
    path = "" if not sep or path == "(top level)" else path
    # A section's rule about one of its fields says so first ("domain: required ..."): put it there.
    named = _FIELD.match(rest) if sep else None
    if named and _yaml_path(f"{path}.{named.group(1)}" if path else named.group(1)):
        path = _yaml_path(f"{path}.{named.group(1)}" if path else named.group(1)) or path
        return Problem(path, f"{path}: {named.group(2)}")
    if path and _yaml_path(path) not in (None, path):
        # pydantic names a default it validated by the Python name (publishable_key): use the YAML one
        fixed = _yaml_path(path) or path
        return Problem(fixed, f"{fixed}: {rest}")
    return Problem(path, line)


def _yaml_path(path: str) -> str | None:
    """`path` with each part as the profile's YAML spells it (None when the model has no such field)."""
    from pydantic import BaseModel

    from hfwizard.profile import InstallProfile

    model: Any = InstallProfile
    out: list[str] = []
    for key in path.split("."):
        head = key.split("[", 1)[0]
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        found = next(((n, f) for n, f in model.model_fields.items() if head in (n, f.alias)), None)
        if found is None:
            return None
        out.append((found[1].alias or found[0]) + key[len(head):])
        model = next((a for a in (getattr(found[1].annotation, "__args__", ()) or (found[1].annotation,))
                      if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return ".".join(out)


def _owns(prefix: str, problem: Problem) -> bool:
    if prefix == "":
        return True
    if prefix.startswith("="):
        return problem.path == prefix[1:]
    if problem.path == "":
        # Cross-section rules have no location: they belong to the step whose field they name.
        return prefix in problem.line
    return problem.path == prefix or problem.path.startswith((prefix + ".", prefix + "["))


def step_problems(data: dict[str, Any], step: str) -> list[Problem]:
    return [p for p in problems(data) if any(_owns(prefix, p) for prefix in OWNED[step])]


# ---- dotted paths over plain data ----------------------------------------------------------------


def get_path(data: Any, path: str, default: Any = None) -> Any:
    node = data
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set `path`; None removes the key (the model's default or absence applies)."""
    keys = path.split(".")
    node = data
    for key in keys[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            if value is None:
                return
            nxt = node[key] = {}
        node = nxt
    if value is None:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value


_DEFAULTS: dict[str, Any] | None = None


def effective(data: dict[str, Any], path: str) -> Any:
    """What the profile would hold at `path`: the answer, else the preset's value, else the default."""
    from hfwizard.profile import InstallProfile
    from hfwizard.profile_io import apply_preset

    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = InstallProfile().model_dump(mode="json", by_alias=True)
    missing = object()
    value = get_path(apply_preset(data), path, missing)
    return get_path(_DEFAULTS, path) if value is missing else value


def from_text(kind: str, text: str) -> Any:
    """Typed text to the value the draft holds; what does not convert is kept so the model explains why.

    The TUI's fields and plain mode's prompts both convert with this, so a typed answer means the same in each.
    """
    t = text.strip()
    if t == "":
        # A cleared number is a missing answer, not "the default again": the model asks for one.
        return "" if kind in ("int", "float") else None
    if kind == "int":
        try:
            return int(t)
        except ValueError:
            return t
    if kind == "float":
        try:
            f = float(t)
            return int(f) if f.is_integer() else f
        except ValueError:
            return t
    if kind == "list":
        return [part.strip() for part in t.split(",") if part.strip()]
    return t


def field_range(path: str) -> tuple[float | None, float | None]:
    """The (minimum, maximum) the profile model allows at `path`, read from the model's own constraints."""
    import annotated_types
    from pydantic import BaseModel

    from hfwizard.profile import InstallProfile

    model: type[BaseModel] | None = InstallProfile
    info = None
    for key in path.split("."):
        if model is None:
            return None, None
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        info = fields.get(key)
        if info is None:
            return None, None
        sub = info.annotation
        model = sub if isinstance(sub, type) and issubclass(sub, BaseModel) else None
    lo: float | None = None
    hi: float | None = None
    for meta in info.metadata if info else ():
        if isinstance(meta, annotated_types.Ge | annotated_types.Gt):
            lo = float(meta.ge if isinstance(meta, annotated_types.Ge) else meta.gt)  # type: ignore[arg-type]
        if isinstance(meta, annotated_types.Le | annotated_types.Lt):
            hi = float(meta.le if isinstance(meta, annotated_types.Le) else meta.lt)  # type: ignore[arg-type]
    return lo, hi


# ---- the draft on disk ---------------------------------------------------------------------------


class Draft:
    """One install's answers in progress, written atomically to its state directory after each answer.

    Only answers that pass validation are written: a value typed into a secret field that is not a
    reference (a pasted secret) never reaches the disk.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.data: dict[str, Any] = {"apiVersion": "hfwizard/v1", "kind": "InstallProfile",
                                     "metadata": {"name": name}}
        self.step: str = STEPS[0]
        self._saved: dict[str, Any] = copy.deepcopy(self.data)

    @property
    def install(self) -> InstallDir:
        return InstallDir.under(self.root, self.name)

    @property
    def dir(self) -> Path:
        return self.install.create().path

    @property
    def path(self) -> Path:
        return self.install.draft_path

    @classmethod
    def load(cls, root: Path, name: str) -> Draft:
        """The saved draft, else the install's saved profile, else a fresh draft."""
        from hfwizard.files import PROFILE_LIMIT, read_bounded
        from hfwizard.profile_io import parse_yaml, to_plain

        draft = cls(root, name)
        where = InstallDir.under(root, name)
        for candidate in (where.draft_path, where.profile_path):
            if candidate.is_file():
                with contextlib.suppress(Exception):  # an unreadable draft starts fresh, never crashes
                    raw = read_bounded(candidate, what="draft", limit=PROFILE_LIMIT)
                    loaded = to_plain(parse_yaml(raw, str(candidate)))
                    if isinstance(loaded, dict):
                        draft.data = loaded
                        break
        draft.data.setdefault("metadata", {})["name"] = name
        draft.step = cls.saved_step(root, name)
        draft._saved = copy.deepcopy(draft.data)
        return draft

    @staticmethod
    def saved_step(root: Path, name: str) -> str:
        """The step the wizard was last on for this install (the first step when none was saved)."""
        pos = InstallDir.under(root, name).position_path
        if pos.is_file():
            with contextlib.suppress(ValueError, OSError, AttributeError):
                step = json.loads(pos.read_text("utf-8")).get("step")
                if step in POSITIONS:
                    return str(step)
        return STEPS[0]

    @classmethod
    def exists(cls, root: Path, name: str) -> bool:
        return InstallDir.under(root, name).has_draft()

    def set(self, path: str, value: Any) -> None:
        set_path(self.data, path, value)

    def get(self, path: str, default: Any = None) -> Any:
        return get_path(self.data, path, default)

    def save(self, bad_paths: Iterable[str] = frozenset()) -> None:
        """Write the draft; a field with a problem keeps its last good value on disk."""
        out = copy.deepcopy(self.data)
        for path in bad_paths:
            head = path.split("[", 1)[0]
            if not head:
                continue
            set_path(out, head, copy.deepcopy(get_path(self._saved, head)))
        atomic_write(self.install.create().draft_path, dump_data(out))
        self._saved = out

    def save_step(self, step: str) -> None:
        self.step = step
        atomic_write(self.install.create().position_path, json.dumps({"step": step}) + "\n")

    def profile(self) -> InstallProfile:
        """The answers as a profile, held to the install's rules (a written profile can be installed)."""
        from hfwizard.profile import InstallProfile
        from hfwizard.profile_io import apply_preset

        return InstallProfile.validate_complete(apply_preset(self.data))

    def finish(self) -> Path:
        """Write the complete profile as the install's profile (what install, resume and export read)."""
        from hfwizard.profile_io import save_profile

        return save_profile(self.install.create().profile_path, self.profile())

    def reset(self) -> None:
        """Start over: forget the answers and the step (the install's journal is left alone)."""
        for f in (self.install.draft_path, self.install.position_path):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        fresh = Draft(self.root, self.name)
        self.data, self.step, self._saved = fresh.data, fresh.step, fresh._saved


def dump_data(data: dict[str, Any]) -> str:
    """YAML of draft data, as answered (no defaults filled in, so a preset still applies on load)."""
    import io

    from ruamel.yaml import YAML

    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.sort_base_mapping_type_on_output = False  # type: ignore[assignment]  # answers in the profile's order
    buf = io.StringIO()
    buf.write("# hfwizard draft: answers so far (secret fields hold references only)\n")
    y.dump(data, buf)
    return buf.getvalue()
