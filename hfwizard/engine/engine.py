"""The install engine: runs the plan through a Helm backend and the Kubernetes API, as typed events.

    engine = Engine(profile, install_dir, kubeconfig=..., context=...)
    async for event in engine.run():      # StepStarted, StepProgress, LogLine, StepFinished,
        ...                               # StepFailed, InstallFinished (always last)
    engine.exit_code                      # 0 done, 1 failed, 2 changed profile, 3 interrupted, 4 locked

The same call resumes: when the install's journal shows an unfinished run, every step it finished is
checked against the cluster (release status and revision, Secrets present) and skipped, and the run
carries on from the first unfinished step. `engine.cancel()` (or SIGINT/SIGTERM through
`install_signal_handlers`) interrupts the running steps: they are journalled as interrupted and the
run ends with exit code 3.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import secrets as pysecrets
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hfwizard import values
from hfwizard.engine.helm import PENDING_STATUSES, ChartRef, HelmBackend, HelmError, ReleaseInfo, ReleaseNotFound
from hfwizard.engine.journal import (
    INSTALL_FINISHED,
    INSTALL_STARTED,
    STEP_FAILED,
    STEP_FINISHED,
    STEP_NOTE,
    STEP_STARTED,
    Journal,
    JournalState,
)
from hfwizard.engine.kube import Kube, Workload
from hfwizard.engine.plan import Plan, Step, StepKind, build_plan
from hfwizard.errors import ExitCode, HfwizardError, LockHeld, SecretError
from hfwizard.events import Event, InstallFinished, LogLine, StepFailed, StepFinished, StepProgress, StepStarted
from hfwizard.profile import InstallProfile
from hfwizard.profile_io import diff_profiles, profile_data, profile_hash
from hfwizard.secrets import RefKind, parse_ref, resolve

KILL_ENV = "HFWIZARD_TEST_KILL_AT"  # test hook: SIGKILL ourselves at a named point (see _kill_point)


class _StepError(Exception):
    """A step failed: what to show, what to do, and the failing pods' last events."""

    def __init__(self, message: str, remedy: str | None = None, pod_events: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        self.pod_events = pod_events


@dataclass
class EngineOptions:
    kubeconfig: str | None = None
    context: str | None = None
    rollback_on_failure: bool | None = None  # None: the profile's install.rollbackOnFailure
    replan: bool = False  # accept a profile changed since the unfinished run
    lease_seconds: int = 30
    poll_interval: float = 0.5
    secrets_base_dir: Path | None = None  # where relative file: references are read from
    extra: dict[str, Any] = field(default_factory=dict)


def bundled_chart(name: str) -> Path:
    """The path of a chart bundled with hfwizard (`bundled:NAME` in a profile)."""
    path = Path(str(resources.files("hfwizard").joinpath("charts", name)))
    if not (path / "Chart.yaml").is_file():
        raise HfwizardError(f"no bundled chart named {name!r} in {path.parent}")
    return path


def chart_ref(spec: values.ReleaseSpec) -> ChartRef:
    if spec.chart_ref.startswith("bundled:"):
        return ChartRef(str(bundled_chart(spec.chart_ref.removeprefix("bundled:"))))
    return ChartRef(spec.chart_ref, spec.chart_repo)


def values_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


class Engine:
    """Installs (or resumes installing) one profile into its target; see the module docstring."""

    def __init__(self, profile: InstallProfile, install_dir: Path, *, helm: HelmBackend | None = None,
                 options: EngineOptions | None = None, kube: Kube | None = None) -> None:
        self.profile = profile
        self.install_dir = install_dir
        self.options = options or EngineOptions()
        self.plan: Plan = build_plan(profile)
        self.journal = Journal(install_dir)
        self._helm = helm
        self._owns_helm = helm is None  # a backend the engine makes, it also warms up and closes
        self._kube = kube
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancelled = False
        self._kill_at = os.environ.get(KILL_ENV) or None
        self._deadline = 0.0
        self._previous: JournalState | None = None
        self.exit_code: int | None = None
        self.resumed = False

    # ---- public ----------------------------------------------------------------------------------

    @property
    def rollback_on_failure(self) -> bool:
        opt = self.options.rollback_on_failure
        return self.profile.install.rollback_on_failure if opt is None else opt

    def cancel(self) -> None:
        """Interrupt: running steps are journalled as interrupted; the run ends with exit code 3."""
        self._cancelled = True
        for task in self._tasks.values():
            task.cancel()

    async def run(self) -> AsyncIterator[Event]:
        """Run the install (or carry on an unfinished one), yielding events; InstallFinished is last."""
        driver = asyncio.create_task(self._drive(), name="hfwizard-engine")
        try:
            while True:
                event = await self._queue.get()
                if event is None:
                    break
                yield event
        finally:
            if not driver.done():
                self.cancel()
                driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver

    # ---- the run ---------------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self._queue.put_nowait(event)

    def _log(self, step_id: str, line: str, *, level: str = "info", source: str = "hfwizard") -> None:
        self._emit(LogLine(step_id, line, level=level, source=source))

    def _kill_point(self, name: str) -> None:
        # Only the crash-and-resume tests set this; an ordinary run never reaches the kill.
        if self._kill_at is not None and self._kill_at == name:
            os.kill(os.getpid(), signal.SIGKILL)

    async def _drive(self) -> None:
        try:
            code, status, message = await self._drive_inner()
        except asyncio.CancelledError:
            code, status, message = ExitCode.INTERRUPTED, "interrupted", "interrupted"
        except HfwizardError as exc:
            code, status, message = exc.exit_code, "failed", str(exc)
        except Exception as exc:  # an unexpected failure must still end the stream with an answer
            code, status, message = ExitCode.FAILED, "failed", f"internal error: {type(exc).__name__}: {exc}"
        self.exit_code = int(code)
        self._emit(InstallFinished(status, int(code), message))
        self._queue.put_nowait(None)

    async def _drive_inner(self) -> tuple[int, str, str]:
        prof = self.profile
        data = profile_data(prof)
        phash = profile_hash(prof)
        previous = self.journal.state()
        self._previous = previous
        unfinished = previous.runs > 0 and previous.status != "ok"
        if unfinished and previous.profile_hash != phash and not self.options.replan:
            changes = diff_profiles(previous.profile or {}, data)
            lines = "\n".join(f"  - {c}" for c in changes) or "  - (the saved answers differ)"
            return (ExitCode.BAD_INPUT, "refused",
                    f"the profile changed since the unfinished install began:\n{lines}\n"
                    "  -> put the answers back, or run `hfwizard resume --replan` to carry on with the new ones")
        self.resumed = unfinished
        self._deadline = time.monotonic() + prof.install.timeout_seconds
        if self._helm is None:
            self._helm = make_backend(prof, self.options)
        prewarm = getattr(self._helm, "prewarm", None) if self._owns_helm else None
        if prewarm is not None and any(s.kind is StepKind.RELEASE for s in self.plan.steps):
            # Helm's first child starts and loads the Go SDK (about 0.15 s) while this process imports
            # the kubernetes client (about 0.6 s) and runs the lock, namespace and Secrets steps, when
            # no other Helm child runs (so the memory peak is unchanged). Only the process starts
            # early: its request, values included, goes over its stdin when the release step runs.
            await prewarm()
        try:
            return await self._locked_run(previous if unfinished else JournalState(), phash, data)
        finally:
            aclose = getattr(self._helm, "aclose", None) if self._owns_helm else None
            if aclose is not None:
                await aclose()  # a warm child no step claimed (a failure, a cancel) ends here

    async def _locked_run(self, previous: JournalState, phash: str, data: dict[str, Any]) -> tuple[int, str, str]:
        prof = self.profile
        from hfwizard.engine.lock import InstallLock

        if self._kube is None:
            from hfwizard.engine.kube import connect

            client = await asyncio.to_thread(connect, self.options.kubeconfig, self.options.context)
            self._kube = Kube(client)
        lock = InstallLock(self.install_dir, prof.metadata.name, self._kube.api_client, prof.target.namespace,
                           lease_seconds=self.options.lease_seconds)
        try:
            await lock.__aenter__()
        except LockHeld as exc:
            return ExitCode.LOCKED, "locked", str(exc)
        try:
            if lock.lease.took_over_from is not None:
                self._log("lock", f"took over the install lock left by {lock.lease.took_over_from.describe()}, "
                                  "which no longer runs", level="warning")
            with self.journal:
                return await self._run_plan(previous, phash, data)
        finally:
            await lock.__aexit__(None, None, None)

    async def _run_plan(self, previous: JournalState, phash: str, data: dict[str, Any]) -> tuple[int, str, str]:
        self.journal.append(INSTALL_STARTED, run=previous.runs + 1, mode="resume" if self.resumed else "install",
                            profile_hash=phash, profile=data, plan=self.plan.ids)
        self._kill_point("run:started")
        done: set[str] = set()
        if self.resumed:
            done = await self._verify_done(previous)
        started: set[str] = set(done)
        failed: str | None = None
        interrupted = False
        outcome: dict[str, BaseException | None] = {}
        while True:
            if not self._cancelled and failed is None:
                for step in self.plan.ready(done, started):
                    started.add(step.id)
                    attempt = previous.step(step.id).attempts + 1 if self.resumed else 1
                    self._tasks[step.id] = asyncio.create_task(self._run_step(step, attempt),
                                                               name=f"step {step.id}")
            if not self._tasks:
                break
            finished, _ = await asyncio.wait(self._tasks.values(), return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                sid = next(k for k, t in self._tasks.items() if t is task)
                del self._tasks[sid]
                exc = task.exception() if not task.cancelled() else asyncio.CancelledError()
                outcome[sid] = exc
                if exc is None:
                    done.add(sid)
                elif isinstance(exc, asyncio.CancelledError):
                    interrupted = True
                elif failed is None:
                    failed = sid
        self._kill_point("run:finishing")
        if interrupted or self._cancelled:
            self.journal.append(INSTALL_FINISHED, status="interrupted", exit_code=int(ExitCode.INTERRUPTED))
            return ExitCode.INTERRUPTED, "interrupted", "interrupted; run `hfwizard resume` to carry on"
        if failed is not None:
            self.journal.append(INSTALL_FINISHED, status="failed", exit_code=int(ExitCode.FAILED), step=failed)
            return (ExitCode.FAILED, "failed",
                    f"step {failed} failed; fix the cause and run `hfwizard resume` to retry it")
        self.journal.append(INSTALL_FINISHED, status="ok", exit_code=0)
        where = " in the sandbox (a rehearsal on an emulated cluster)" if self.profile.is_sandbox else ""
        return ExitCode.OK, "ok", f"Highflame is installed{where}"

    # ---- resume: check what the journal says is done -----------------------------------------------

    async def _verify_done(self, previous: JournalState) -> set[str]:
        done: set[str] = set()
        for step in self.plan.steps:
            st = previous.steps.get(step.id)
            if st is None or st.status != "done":
                continue
            if not all(d in done for d in step.depends_on):
                continue  # something it builds on is redone, so it is redone too
            ok, detail = await self._still_done(step, st.revision)
            if ok:
                done.add(step.id)
                self._emit(StepFinished(step.id, "skipped", f"done in an earlier run; {detail}"))
            else:
                self._log(step.id, f"journal says done, but {detail}: doing it again", level="warning")
        return done

    async def _still_done(self, step: Step, revision: int | None) -> tuple[bool, str]:
        kube = self._kube
        assert kube is not None and self._helm is not None
        ns = self.plan.namespace
        if step.kind is StepKind.NAMESPACE:
            ok = await asyncio.to_thread(kube.namespace_exists, ns)
            return ok, "namespace exists" if ok else "the namespace is gone"
        if step.kind is StepKind.SECRETS:
            for spec in step.secrets:
                found = await asyncio.to_thread(kube.read_secret, ns, spec.name)
                keys = set((found or {}).get("data") or {})
                want = set(spec.entries) | set(spec.generated)
                if spec.type == "kubernetes.io/dockerconfigjson":
                    want = {".dockerconfigjson"}
                if found is None or not want <= keys:
                    return False, f"Secret {spec.name} is missing or incomplete"
            return True, f"{len(step.secrets)} Secrets present"
        if step.kind is StepKind.RELEASE and step.release is not None:
            name = step.release.release
            record = await self._release_record(name)
            if record is None:
                return False, f"release {name} is gone"
            rev, status = record
            if status != "deployed" or (revision is not None and rev != revision):
                return False, f"release {name} is {status} at revision {rev} (journal: deployed at {revision})"
            return True, f"release {name} deployed at revision {rev}"
        if step.kind is StepKind.VERIFY:
            return True, "verified in an earlier run; everything it checked is still recorded as done"
        return False, "not checkable"

    # ---- steps -------------------------------------------------------------------------------------

    async def _run_step(self, step: Step, attempt: int) -> None:
        self.journal.append(STEP_STARTED, step=step.id, attempt=attempt)
        self._emit(StepStarted(step.id, step.title, attempt))
        self._kill_point(f"{step.id}:started")
        try:
            if self._remaining() <= 0:
                raise _StepError(f"the install ran out of its {self.profile.install.timeout_seconds}s "
                                 "(install.timeoutSeconds)", remedy="raise install.timeoutSeconds and resume")
            detail, extra = await self._dispatch(step)
        except asyncio.CancelledError:
            self.journal.append(STEP_FAILED, step=step.id, error="interrupted", interrupted=True)
            self._emit(StepFailed(step.id, "interrupted", "run `hfwizard resume` to carry on", interrupted=True))
            raise
        except _StepError as exc:
            self.journal.append(STEP_FAILED, step=step.id, error=exc.message)
            self._emit(StepFailed(step.id, exc.message, exc.remedy, exc.pod_events))
            raise
        except HfwizardError as exc:
            self.journal.append(STEP_FAILED, step=step.id, error=exc.message)
            self._emit(StepFailed(step.id, exc.message, exc.remedy))
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {_api_reason(exc)}"
            self.journal.append(STEP_FAILED, step=step.id, error=message)
            self._emit(StepFailed(step.id, message))
            raise
        self._kill_point(f"{step.id}:applied")
        self.journal.append(STEP_FINISHED, step=step.id, status="ok", detail=detail, **extra)
        self._emit(StepFinished(step.id, "ok", detail))
        self._kill_point(f"{step.id}:finished")

    async def _dispatch(self, step: Step) -> tuple[str, dict[str, Any]]:
        if step.kind is StepKind.NAMESPACE:
            return await self._step_namespace()
        if step.kind is StepKind.SECRETS:
            return await self._step_secrets(step)
        if step.kind is StepKind.RELEASE:
            return await self._step_release(step)
        return await self._step_verify()

    def _remaining(self) -> float:
        return self._deadline - time.monotonic()

    async def _step_namespace(self) -> tuple[str, dict[str, Any]]:
        assert self._kube is not None
        ns = self.plan.namespace
        created = await asyncio.to_thread(self._kube.ensure_namespace, ns)
        return (f"created namespace {ns}" if created else f"namespace {ns} exists"), {}

    async def _step_secrets(self, step: Step) -> tuple[str, dict[str, Any]]:
        kube = self._kube
        assert kube is not None
        ns = self.plan.namespace
        await self._check_k8s_refs(step.id)
        # Resolve every reference before writing anything: a missing one fails the step untouched.
        resolved: list[tuple[values.SecretSpec, dict[str, str]]] = []
        for spec in step.secrets:
            resolved.append((spec, self._secret_data(spec)))
        written = []
        for i, (spec, data) in enumerate(resolved):
            existing = await asyncio.to_thread(kube.read_secret, ns, spec.name)
            if existing is not None:
                labels = (existing.get("metadata") or {}).get("labels") or {}
                if labels.get(values.MANAGED_BY_LABEL) != values.MANAGED_BY:
                    raise _StepError(f"Secret {ns}/{spec.name} exists and is not managed by hfwizard",
                                     remedy="rename or remove it, or point the profile at it with a k8s: reference")
            for key in spec.generated:
                # Generated once and kept: a re-run or resume must not change the ClickHouse password.
                old = ((existing or {}).get("data") or {}).get(key)
                data[key] = base64.b64decode(old).decode() if old else pysecrets.token_urlsafe(32)
            await asyncio.to_thread(kube.write_secret, ns, spec.name, spec.type, data, existing)
            written.append(spec.name)
            self._log(step.id, f"Secret {spec.name}: {'updated' if existing else 'created'} "
                               f"({', '.join(sorted(data))})")
            if i == 0:
                self._kill_point(f"{step.id}:mid")
        return f"{len(written)} Secrets written: {', '.join(written)}", {}

    def _secret_data(self, spec: values.SecretSpec) -> dict[str, str]:
        base = self.options.secrets_base_dir
        out: dict[str, str] = {}
        if spec.type == "kubernetes.io/dockerconfigjson":
            img = self.profile.images
            token = resolve(spec.entries["token"], base_dir=base).reveal()
            if not img.pull_username:
                raise SecretError("images.pullSecret is set but images.pullUsername is not",
                                  remedy="set images.pullUsername to the registry user the token belongs to")
            auth = base64.b64encode(f"{img.pull_username}:{token}".encode()).decode()
            out[".dockerconfigjson"] = json.dumps(
                {"auths": {img.registry: {"username": img.pull_username, "password": token, "auth": auth}}})
            return out
        for key, ref in spec.entries.items():
            out[key] = resolve(ref, base_dir=base).reveal()
        return out

    async def _check_k8s_refs(self, step_id: str) -> None:
        """`k8s:` references name Secrets already in the namespace: make sure each key is there."""
        kube = self._kube
        assert kube is not None
        if step_id != "secrets":
            return
        refs = _k8s_refs(self.profile)
        for ref in refs:
            name, key = parse_ref(ref).k8s_secret
            found = await asyncio.to_thread(kube.read_secret, self.plan.namespace, name)
            if found is None or key not in (found.get("data") or {}):
                raise SecretError(f"secret reference {ref}: no key {key!r} in Secret {self.plan.namespace}/{name}",
                                  remedy="create it first, or use an env:/file: reference")

    async def _step_release(self, step: Step) -> tuple[str, dict[str, Any]]:
        helm, kube = self._helm, self._kube
        assert helm is not None and kube is not None and step.release is not None
        spec = step.release
        ns = self.plan.namespace
        name = spec.release
        vhash = values_hash(spec.values)
        current = await self._release_record(name)
        if current is not None and current[1] in PENDING_STATUSES:
            self._log(step.id, f"release {name} was left {current[1]} at revision {current[0]} "
                               "by an interrupted run: recovering it first", level="warning")
            await helm.recover_pending(name, ns)
            current = await self._release_record(name)
        adopted = self._adoptable(step, current, vhash)
        if adopted is not None:
            return adopted
        base = current[0] if current is not None else 0
        # Noted before Helm is called: if we die while it works, resume can tell its revision from ours.
        self.journal.append(STEP_NOTE, step=step.id, action="helm", release=name, base_revision=base,
                            values_hash=vhash)

        def on_log(line: str) -> None:
            progress_seen[0] = time.monotonic()
            self._log(step.id, line, level=_helm_level(line), source="helm")

        progress_seen = [time.monotonic()]
        call = asyncio.create_task(helm.install_or_upgrade(
            name, chart_ref(spec), ns, spec.values, version=spec.chart_version, wait=True,
            timeout_s=max(1.0, self._remaining()), on_log=on_log))
        try:
            info = await self._watch(step, name, call, progress_seen)
        except HelmError as exc:
            await self._after_failure(step, name, base)
            events = tuple(await asyncio.to_thread(kube.failing_pod_events, ns, name))
            raise _StepError(f"Helm: {exc.message}", exc.remedy, events) from None
        except _StepError as exc:
            await self._after_failure(step, name, base)
            raise _StepError(exc.message, exc.remedy,
                             tuple(await asyncio.to_thread(kube.failing_pod_events, ns, name))) from None
        return (f"release {name} {info.status} at revision {info.revision} ({info.chart})",
                {"release": name, "revision": info.revision, "values_hash": vhash})

    async def _history(self, name: str) -> list[ReleaseInfo]:
        assert self._helm is not None
        try:
            return await self._helm.history(name, self.plan.namespace)
        except ReleaseNotFound:
            return []

    async def _release_record(self, name: str) -> tuple[int, str] | None:
        """(revision, status) of the release: from Helm's records through the API (no Helm start),
        else from Helm itself (a storage driver other than Secrets)."""
        assert self._kube is not None and self._helm is not None
        record = await asyncio.to_thread(self._kube.release_record, self.plan.namespace, name)
        if record is not None or _helm_records_in_secrets():
            # With the Secrets driver, Helm finds a release by this very label query, so "no record"
            # is Helm's answer too; asking it would start a child (~0.2 s) just to hear "not found".
            return record
        try:
            info = await self._helm.status(name, self.plan.namespace)
        except ReleaseNotFound:
            return None
        return info.revision, info.status

    def _adoptable(self, step: Step, current: tuple[int, str] | None,
                   vhash: str) -> tuple[str, dict[str, Any]] | None:
        """A release the interrupted run's own Helm call finished: deployed at the revision after the
        one it started from, with the same values. Taking it as done spares a needless upgrade."""
        prev = self._previous.steps.get(step.id) if self._previous and self.resumed else None
        if prev is None or current is None or current[1] != "deployed":
            return None
        revision = current[0]
        name = step.release.release if step.release else step.id
        notes = [n for n in prev.notes if n.get("action") == "helm"]
        if not notes:
            return None
        note = notes[-1]
        base = note.get("base_revision")
        if note.get("values_hash") != vhash or base is None or revision != int(base) + 1:
            return None
        self._log(step.id, f"release {name} was deployed at revision {revision} by the "
                           "interrupted run with these values: not repeating it")
        return (f"release {name} deployed at revision {revision} (finished by the interrupted run)",
                {"release": name, "revision": revision, "values_hash": vhash, "adopted": True})

    async def _watch(self, step: Step, release: str, call: asyncio.Task[ReleaseInfo],
                     seen: list[float]) -> ReleaseInfo:
        """Wait for Helm while reporting ready replicas; fail as stalled when nothing moves."""
        kube = self._kube
        assert kube is not None
        stall = self.profile.install.stall_seconds
        last: tuple[int, int] | None = None
        try:
            while True:
                done, _ = await asyncio.wait({call}, timeout=self.options.poll_interval)
                if done:
                    return call.result()
                try:
                    loads = await asyncio.to_thread(kube.workloads, self.plan.namespace, release)
                except Exception:
                    loads = None  # a blip of the API; Helm is still working
                if loads is not None:
                    prog = (sum(w.ready for w in loads), sum(w.desired for w in loads))
                    if prog != last:
                        last = prog
                        seen[0] = time.monotonic()
                        self._emit(StepProgress(step.id, prog[0], prog[1], _progress_text(loads)))
                if loads:
                    self._kill_point(f"{step.id}:mid")  # Helm has applied the manifests and is waiting
                now = time.monotonic()
                if now - seen[0] > stall:
                    raise _StepError(f"stalled: nothing advanced for {stall}s (install.stallSeconds)"
                                     + (f"; {last[0]}/{last[1]} replicas ready" if last else ""),
                                     remedy="look at the failing pods' events below; `hfwizard resume` retries")
                if now > self._deadline:
                    raise _StepError(f"the install ran out of its {self.profile.install.timeout_seconds}s "
                                     "(install.timeoutSeconds)", remedy="raise install.timeoutSeconds and resume")
        finally:
            if not call.done():
                call.cancel()  # ends Helm's child process: Helm records the release as failed
                with contextlib.suppress(asyncio.CancelledError, HelmError):
                    await call

    async def _after_failure(self, step: Step, release: str, base_revision: int | None) -> None:
        if not self.rollback_on_failure:
            return
        helm = self._helm
        assert helm is not None
        ns = self.plan.namespace
        if base_revision is None:  # a fresh run did not ask: ask now, before deciding
            history = await self._history(release)
            deployed = [r.revision for r in history if r.status in ("deployed", "superseded")]
            base_revision = max(deployed) if deployed else 0
        try:
            if base_revision > 0:
                self._log(step.id, f"rolling {release} back to revision {base_revision} (--rollback-on-failure)",
                          level="warning")
                await helm.rollback(release, ns, base_revision, wait=True, timeout_s=max(30.0, self._remaining()),
                                    on_log=lambda line: self._log(step.id, line, source="helm"))
            else:
                self._log(step.id, f"removing the failed first install of {release} (--rollback-on-failure)",
                          level="warning")
                await helm.uninstall(release, ns, wait=True, timeout_s=max(30.0, self._remaining()),
                                     on_log=lambda line: self._log(step.id, line, source="helm"))
        except HelmError as exc:
            self._log(step.id, f"rollback failed too: {exc.message}", level="error")

    async def _step_verify(self) -> tuple[str, dict[str, Any]]:
        kube = self._kube
        assert kube is not None
        ns = self.plan.namespace
        stall = self.profile.install.stall_seconds
        last_change = time.monotonic()
        last: tuple[int, int] | None = None
        while True:
            problems, loads = await asyncio.to_thread(self._verify_once)
            prog = (sum(w.ready for w in loads), sum(w.desired for w in loads))
            if prog != last:
                last, last_change = prog, time.monotonic()
                self._emit(StepProgress("verify", prog[0], prog[1], _progress_text(loads)))
            if not problems:
                break
            if time.monotonic() - last_change > stall or self._remaining() <= 0:
                events: list[str] = []
                for rel in self.plan.releases:
                    events += await asyncio.to_thread(kube.failing_pod_events, ns, rel.release)
                raise _StepError("verification failed: " + "; ".join(problems), pod_events=tuple(events))
            await asyncio.sleep(self.options.poll_interval)
        ing = self.profile.ingress
        tls = "with TLS" if ing.enabled and ing.tls.enabled else "without TLS (tls disabled in the profile)"
        where = f"; ingress {ing.domain} {tls}" if ing.enabled else ""
        return f"{len(loads)} workloads ready ({prog[0]}/{prog[1]} replicas); Services have endpoints{where}", {}

    def _verify_once(self) -> tuple[list[str], list[Workload]]:
        kube = self._kube
        assert kube is not None
        ns = self.plan.namespace
        problems: list[str] = []
        loads: list[Workload] = []
        view = kube.endpoint_view(ns)
        for rel in self.plan.releases:
            found = kube.workloads(ns, rel.release)
            loads += found
            if rel.key == "highflame":
                want = {f"{rel.release}-{_kebab(m.value)}" for m in values.enabled_modules(self.profile)}
                missing = want - {w.name for w in found if w.kind == "Deployment"}
                if missing:
                    problems.append("missing Deployments: " + ", ".join(sorted(missing)))
            elif not any(w.kind == "StatefulSet" for w in found):
                problems.append(f"ClickHouse StatefulSet {rel.release} is missing")
            for w in found:
                if not w.is_ready:
                    problems.append(f"{w.kind} {w.name}: {w.ready}/{w.desired} ready")
            for svc in kube.services(ns, rel.release):
                if not kube.service_has_endpoints(ns, svc, view):
                    problems.append(f"Service {svc['metadata']['name']} has no ready endpoints")
        ing = self.profile.ingress
        if ing.enabled:
            obj = kube.ingress(ns, self.profile.target.release)
            if obj is None:
                problems.append(f"Ingress {self.profile.target.release} is missing")
            elif ing.tls.enabled:
                secret = values.highflame_values(self.profile)["ingress"]["tls"]["secretName"]
                entries = (obj.get("spec") or {}).get("tls") or []
                if secret and not any(e.get("secretName") == secret and ing.domain in (e.get("hosts") or [])
                                      for e in entries):
                    problems.append(f"Ingress {self.profile.target.release} has no TLS entry for {ing.domain} "
                                    f"with Secret {secret}")
                elif secret and not ing.tls.issuer and kube.read_secret(ns, secret) is None:
                    problems.append(f"TLS Secret {secret} is missing")
        return problems, loads


# ---- helpers ---------------------------------------------------------------------------------------


def _helm_level(line: str) -> str:
    word = line.split(" ", 2)[1] if line.startswith("helm ") and " " in line[5:] else ""
    return {"DEBUG": "debug", "WARNING": "warning", "WARN": "warning", "ERROR": "error"}.get(word, "info")


def _helm_records_in_secrets() -> bool:
    """Whether Helm keeps release records in Secrets: its default, changed only through HELM_DRIVER
    (read by the helm binary; the embedded SDK is never given a driver, so it always uses Secrets)."""
    return os.environ.get("HELM_DRIVER", "").strip().lower() in ("", "secret", "secrets")


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name)


def _progress_text(loads: list[Workload]) -> str:
    waiting = [f"{w.name} {w.ready}/{w.desired}" for w in loads if not w.is_ready]
    return ("waiting for " + ", ".join(waiting[:4]) + (" ..." if len(waiting) > 4 else "")) if waiting else "all ready"


def _api_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    if status is not None:
        message = ""
        with contextlib.suppress(Exception):
            message = json.loads(body or "{}").get("message", "")
        return f"Kubernetes API {status} {reason or ''}: {message}".strip()
    return str(exc)


def _k8s_refs(profile: InstallProfile) -> list[str]:
    refs = [profile.postgres.password, profile.redis.password, profile.clerk.secret_key,
            profile.clickhouse.backup.credentials, profile.images.pull_secret,
            *profile.platform.model_api_keys.values()]
    tls = profile.ingress.tls
    if profile.ingress.enabled and tls.enabled:
        refs += [tls.certificate, tls.private_key]
    return [r for r in refs if r is not None and parse_ref(r).kind is RefKind.K8S]


def make_backend(profile: InstallProfile, options: EngineOptions) -> HelmBackend:
    """The Helm backend the profile chose: embedded (Go SDK in a child process) or the operator's helm."""
    from hfwizard.profile import HelmBackend as Choice

    if profile.install.helm is Choice.CLI:
        from hfwizard.engine.helm_cli import HelmCli

        return HelmCli(profile.install.helm_binary, kubeconfig=options.kubeconfig, context=options.context)
    from hfwizard.engine.helm_embedded import EmbeddedHelm

    # Its child ends with us on its own (parent-death signal), so a SIGKILLed installer leaves no Helm
    # call running to race the `resume`. Not `warm=True`: a child loading ahead of the next release
    # while one runs would add about 75 MiB to the install's memory peak; the engine starts only
    # the first one ahead (`Engine._drive_inner`), while no Helm child runs.
    return EmbeddedHelm(options.kubeconfig, options.context)


def install_signal_handlers(engine: Engine) -> Callable[[], None]:
    """SIGINT and SIGTERM interrupt the engine (exit 3 after the journal is consistent); returns an undo."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, engine.cancel)

    def undo() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    return undo
