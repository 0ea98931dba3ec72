"""The Secrets steps: generated platform secrets (made once, kept), prerequisites and each service's env Secret.

Values are resolved in memory only, never logged or journaled: a log line names a Secret and its keys.
Generated keys are read back from the cluster on every run, so resume and upgrade reuse them. In the
sandbox every reference is resolved (so a wrong one fails as it would) and then replaced by a placeholder:
a rehearsal never copies a real secret into the emulated cluster or its state file.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import Any

from hfwizard.engine.context import StepContext, StepError, StepResult
from hfwizard.engine.plan import REHEARSAL_FILLER, StepKind
from hfwizard.engine.steps.base import StepRunner, register
from hfwizard.errors import SecretError
from hfwizard.platform.secretspec import MANAGED_BY, MANAGED_BY_LABEL, SecretSpec, generate, materialize, part
from hfwizard.secrets import RefKind, parse_ref, resolve
from hfwizard.store.journal import StepState

REHEARSAL_PLACEHOLDER = "rehearsal-placeholder"
"""What a resolved secret becomes in the sandbox."""


@register(StepKind.SECRETS)
class SecretsStep(StepRunner):
    async def run(self, ctx: StepContext) -> StepResult:
        kube, ns = ctx.kube, ctx.namespace
        resolver = Resolver(ctx)
        # Resolve every reference before writing anything: a missing one fails the step untouched.
        planned: list[tuple[SecretSpec, dict[str, str], dict[str, Any] | None]] = []
        for spec in ctx.step.secrets:
            existing = await asyncio.to_thread(kube.read_secret, ns, spec.name)
            _check_ours(ns, spec, existing)
            refs = part(spec, generated=False)
            data = await asyncio.to_thread(materialize, refs, resolver) if refs.entries else {}
            planned.append((spec, data, existing))
        # Generated once and kept: a re-run, resume or upgrade must not change a signing key. RSA key
        # generation takes a while; OpenSSL releases the GIL, so the Secrets are generated side by side.
        made = await asyncio.gather(*(asyncio.to_thread(generate, part(spec, generated=True), decoded(existing))
                                      for spec, _, existing in planned if spec.generated_keys))
        fresh = iter(made)
        planned = [(spec, {**data, **next(fresh)} if spec.generated_keys else data, existing)
                   for spec, data, existing in planned]
        written: list[str] = []
        for i, (spec, data, existing) in enumerate(planned):
            if existing is not None and decoded(existing) == data:
                continue
            await ctx.fence()
            await asyncio.to_thread(kube.write_secret, ns, spec.name, spec.type, data, existing)
            written.append(spec.name)
            ctx.log(f"Secret {spec.name}: {'updated' if existing else 'created'} ({', '.join(sorted(data))})")
            if i == 0:
                ctx.kill_point("mid")
        kept = len(planned) - len(written)
        return StepResult(f"{len(written)} Secrets written, {kept} unchanged" + (
            f": {', '.join(written)}" if written else ""))

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        for spec in ctx.step.secrets:
            found = await asyncio.to_thread(ctx.kube.read_secret, ctx.namespace, spec.name)
            if found is None or not set(spec.entries) <= set(found.get("data") or {}):
                return False, f"Secret {spec.name} is missing or incomplete"
        return True, f"{len(ctx.step.secrets)} Secrets present"


class ReferenceResolver:
    """Turns a reference into its value for `materialize`: `k8s:` from the cluster (that namespace), the others
    through hfwizard.secrets (file: relative to `base`); in a rehearsal, checked and then replaced by a
    placeholder. Usable outside a step (the upgrade's plan diff resolves what the plan would write)."""

    def __init__(self, kube: Any, namespace: str, *, base: Path | None, rehearsal: bool) -> None:
        self.kube, self.namespace, self.base, self.rehearsal = kube, namespace, base, rehearsal

    def __call__(self, ref: str) -> str:
        if ref == REHEARSAL_FILLER and self.rehearsal:
            return REHEARSAL_PLACEHOLDER
        parsed = parse_ref(ref)
        if parsed.kind is RefKind.K8S:
            return self._from_cluster(ref, *parsed.k8s_secret)
        value = resolve(ref, base_dir=self.base).reveal()
        return REHEARSAL_PLACEHOLDER if self.rehearsal else value

    def _from_cluster(self, ref: str, name: str, key: str) -> str:
        ns = self.namespace
        found = self.kube.read_secret(ns, name)
        raw = ((found or {}).get("data") or {}).get(key)
        if raw is None:
            raise SecretError(f"secret reference {ref}: no key {key!r} in Secret {ns}/{name}",
                              remedy="create it first, or use an env:/file: reference")
        return base64.b64decode(raw).decode("utf-8")


class Resolver(ReferenceResolver):
    """The resolver of a step: its cluster and namespace, the run's secrets base folder, the profile's sandbox."""

    def __init__(self, ctx: StepContext) -> None:
        # A k8s: reference names a Secret in the platform's namespace, also for a step working in another
        # (ClickHouse's own namespace copies the generated admin password from there).
        super().__init__(ctx.kube, ctx.run.plan.namespace, base=ctx.run.secrets_base_dir,
                         rehearsal=ctx.profile.is_sandbox)


def decoded(secret: dict[str, Any] | None) -> dict[str, str]:
    """A Secret's data as text (empty for no Secret)."""
    data = (secret or {}).get("data") or {}
    return {k: base64.b64decode(v).decode("utf-8") for k, v in data.items()}


def content_hash(data: dict[str, str]) -> str:
    """A short digest of a Secret's content, for the pods' checksum annotation (says nothing of the values)."""
    h = hashlib.sha256()
    for key in sorted(data):
        h.update(key.encode() + b"\0" + data[key].encode() + b"\0")
    return h.hexdigest()[:16]


def _check_ours(ns: str, spec: SecretSpec, existing: dict[str, Any] | None) -> None:
    if existing is None:
        return
    labels = (existing.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        raise StepError(f"Secret {ns}/{spec.name} exists and is not managed by hfwizard",
                        remedy="rename or remove it, or point the profile at it with a k8s: reference")
