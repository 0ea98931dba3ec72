"""The support bundle: collectors run side by side, each under its own timeout, into one masked .tar.gz."""

# A collector is a name and a callable returning files (relative name -> bytes or text), or a
# `Collected` when some of its parts failed. A collector that raises or outlives its timeout is
# listed in `collectors.json` with what went wrong, and the bundle is written without it: a support
# bundle is most wanted when things are broken, so nothing in it may be fatal. Every file, every name
# and `collectors.json` itself pass through the redactor before they enter the archive, and the
# archive is written atomically, mode 0600.

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import io
import json
import os
import posixpath
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfwizard.daytwo.redact import Redactor
from hfwizard.state import FILE_MODE, fsync_dir

INDEX_FILE = "collectors.json"
DEFAULT_TIMEOUT = 30.0
MAX_PARALLEL = 4
MAX_FILE_BYTES = 8 * 1024 * 1024  # larger files keep their tail: the end of a log is what explains a failure

type FileData = bytes | str


@dataclass
class Collected:
    """What a collector gathered, and the parts it could not (each a line for collectors.json)."""

    files: dict[str, FileData] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Collector:
    """One source of the bundle; its files land under `<name>/` in the archive."""

    name: str
    collect: Callable[[], Mapping[str, FileData] | Collected]
    timeout: float | None = None  # overrides the bundle's timeout per collector


class Outcome(enum.StrEnum):
    OK = "ok"
    PARTIAL = "partial"      # returned files, and named parts it could not gather
    FAILED = "failed"        # raised
    TIMED_OUT = "timed_out"  # still running at its deadline: left behind, its files not included


@dataclass
class CollectorResult:
    name: str
    outcome: Outcome
    seconds: float
    files: list[str] = field(default_factory=list)
    error: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class BundleReport:
    path: Path
    results: list[CollectorResult]

    @property
    def failed(self) -> list[CollectorResult]:
        return [r for r in self.results if r.outcome in (Outcome.FAILED, Outcome.TIMED_OUT)]


def write_support_bundle(out_path: Path, collectors: Iterable[Collector], redactor: Redactor,
                         timeout_per_collector: float = DEFAULT_TIMEOUT, *, max_parallel: int = MAX_PARALLEL,
                         info: Mapping[str, Any] | None = None) -> BundleReport:
    """Run `collectors` and write their files, masked by `redactor`, to `out_path` (.tar.gz, 0600).

    `info` (install name, hfwizard version, command...) goes into collectors.json. Returns what each
    collector did; raises only when the archive itself cannot be written (OSError)."""
    collectors = list(collectors)
    names = [c.name for c in collectors]
    if len(set(names)) != len(names):
        raise ValueError(f"collector names must be unique: {names}")
    runs = _run_all(collectors, timeout_per_collector, max_parallel)
    top = _top_folder(out_path)
    members: list[tuple[str, bytes]] = []
    results = []
    for collector, run in zip(collectors, runs, strict=True):
        result = run.result
        for name, data in run.files.items():
            member = _member_name(collector.name, name)
            raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            members.append((member, redactor.redact(_cap(raw))))
            result.files.append(member)
        results.append(result)
    index = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **(dict(info) if info else {}),
        "masking": {"secret_values": len(redactor), "note": "every file passed through the masker"},
        "collectors": [dataclasses.asdict(r) for r in results],
    }
    members.insert(0, (INDEX_FILE, redactor.redact(to_json(index))))
    _write_archive(out_path, top, [(redactor.redact_text(n), d) for n, d in members])
    return BundleReport(out_path, results)


def to_json(value: Any) -> bytes:
    """JSON for a bundle file: dataclasses, pydantic models, enums, dates and paths included."""
    return json.dumps(value, indent=2, sort_keys=False, default=_jsonable, ensure_ascii=False).encode("utf-8")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


@dataclass
class _Run:
    collector: Collector
    deadline: float = 0.0
    started: float = 0.0
    done: bool = False
    files: dict[str, FileData] = field(default_factory=dict)
    result: CollectorResult = field(default_factory=lambda: CollectorResult("", Outcome.FAILED, 0.0))


def _run_all(collectors: list[Collector], timeout: float, max_parallel: int) -> list[_Run]:
    """Run the collectors, at most `max_parallel` at once; one whose deadline passes is left behind
    (a thread cannot be killed) and its slot given to the next."""
    runs = [_Run(c) for c in collectors]
    pending = deque(runs)
    running: list[_Run] = []
    changed = threading.Condition()

    def work(run: _Run) -> None:
        try:
            got = run.collector.collect()
            files, problems = (got.files, got.problems) if isinstance(got, Collected) else (dict(got), [])
            outcome, error = (Outcome.PARTIAL if problems else Outcome.OK), ""
        except Exception as exc:
            files, problems, outcome, error = {}, [], Outcome.FAILED, describe_error(exc)
        with changed:
            if not run.done:  # not already given up on
                run.files = dict(files)
                run.result = CollectorResult(run.collector.name, outcome, round(time.monotonic() - run.started, 3),
                                             error=error, problems=list(problems))
                run.done = True
            changed.notify_all()

    with changed:
        while pending or running:
            while pending and len(running) < max_parallel:
                run = pending.popleft()
                run.started = time.monotonic()
                run.deadline = run.started + (run.collector.timeout or timeout)
                running.append(run)
                threading.Thread(target=work, args=(run,), name=f"bundle-{run.collector.name}", daemon=True).start()
            now = time.monotonic()
            for run in [r for r in running if not r.done and r.deadline <= now]:
                run.done = True
                limit = run.collector.timeout or timeout
                run.result = CollectorResult(run.collector.name, Outcome.TIMED_OUT, round(now - run.started, 3),
                                             error=f"no answer within {limit:g} s; left behind")
            running = [r for r in running if not r.done]
            if running:
                changed.wait(max(0.0, min(r.deadline for r in running) - time.monotonic()))
    return runs


def describe_error(exc: BaseException) -> str:
    """One line about an error: the class and the first line of its message (Kubernetes client errors
    carry whole response bodies after it; the redactor runs over it all the same)."""
    status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
    if isinstance(status, int) and reason:
        return f"{type(exc).__name__}: ({status}) {reason}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _cap(raw: bytes) -> bytes:
    if len(raw) <= MAX_FILE_BYTES:
        return raw
    cut = len(raw) - MAX_FILE_BYTES
    return f"[... first {cut} bytes left out ...]\n".encode() + raw[cut:]


def _member_name(collector: str, name: str) -> str:
    """`<collector>/<name>`, with nothing in `name` able to climb out of the collector's folder."""
    def clean(path: str) -> list[str]:
        return [p for p in posixpath.normpath(path.replace("\\", "/")).split("/") if p not in ("", ".", "..")]

    return "/".join(clean(collector) + clean(name))


def _top_folder(out_path: Path) -> str:
    name = out_path.name
    for suffix in (".tar.gz", ".tgz", ".gz", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)] or "support-bundle"
    return name or "support-bundle"


def _write_archive(out_path: Path, top: str, members: list[tuple[str, bytes]]) -> None:
    """The archive to a temporary file beside `out_path`, 0600 from the start, then renamed over it."""
    parent = out_path.parent
    if not parent.exists():
        parent.mkdir(parents=True, mode=0o700)
    now = int(time.time())
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            with tarfile.open(fileobj=fh, mode="w:gz") as tar:
                for name, data in members:
                    entry = tarfile.TarInfo(f"{top}/{name}")
                    entry.size, entry.mode, entry.mtime = len(data), FILE_MODE, now
                    tar.addfile(entry, io.BytesIO(data))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(parent)
