"""The Secrets step: write the Secrets the platform reads, from the profile's references (never logged)."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets as pysecrets
from pathlib import Path

from hfwizard import values
from hfwizard.engine.context import StepContext, StepError, StepResult
from hfwizard.engine.plan import StepKind
from hfwizard.engine.steps.base import StepRunner, register
from hfwizard.errors import SecretError
from hfwizard.profile import InstallProfile
from hfwizard.secrets import RefKind, parse_ref, resolve
from hfwizard.store.journal import StepState

DOCKER_CONFIG = "kubernetes.io/dockerconfigjson"


@register(StepKind.SECRETS)
class SecretsStep(StepRunner):
    async def run(self, ctx: StepContext) -> StepResult:
        kube, ns = ctx.kube, ctx.namespace
        if ctx.id == "secrets":
            await _check_k8s_refs(ctx)
        # Resolve every reference before writing anything: a missing one fails the step untouched.
        resolved = [(spec, secret_data(ctx.profile, spec, ctx.run.secrets_base_dir)) for spec in ctx.step.secrets]
        written = []
        for i, (spec, data) in enumerate(resolved):
            existing = await asyncio.to_thread(kube.read_secret, ns, spec.name)
            if existing is not None:
                labels = (existing.get("metadata") or {}).get("labels") or {}
                if labels.get(values.MANAGED_BY_LABEL) != values.MANAGED_BY:
                    raise StepError(f"Secret {ns}/{spec.name} exists and is not managed by hfwizard",
                                    remedy="rename or remove it, or point the profile at it with a k8s: reference")
            for key in spec.generated:
                # Generated once and kept: a re-run or resume must not change the ClickHouse password.
                old = ((existing or {}).get("data") or {}).get(key)
                data[key] = base64.b64decode(old).decode() if old else pysecrets.token_urlsafe(32)
            await ctx.fence()
            await asyncio.to_thread(kube.write_secret, ns, spec.name, spec.type, data, existing)
            written.append(spec.name)
            ctx.log(f"Secret {spec.name}: {'updated' if existing else 'created'} ({', '.join(sorted(data))})")
            if i == 0:
                ctx.kill_point("mid")
        return StepResult(f"{len(written)} Secrets written: {', '.join(written)}")

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        for spec in ctx.step.secrets:
            found = await asyncio.to_thread(ctx.kube.read_secret, ctx.namespace, spec.name)
            keys = set((found or {}).get("data") or {})
            want = {".dockerconfigjson"} if spec.type == DOCKER_CONFIG else set(spec.entries) | set(spec.generated)
            if found is None or not want <= keys:
                return False, f"Secret {spec.name} is missing or incomplete"
        return True, f"{len(ctx.step.secrets)} Secrets present"


def secret_data(profile: InstallProfile, spec: values.SecretSpec, base: Path | None) -> dict[str, str]:
    """The plain-text entries of one Secret, its references resolved (held in memory only)."""
    out: dict[str, str] = {}
    if spec.type == DOCKER_CONFIG:
        img = profile.images
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


async def _check_k8s_refs(ctx: StepContext) -> None:
    """`k8s:` references name Secrets already in the namespace: make sure each key is there."""
    for ref in k8s_refs(ctx.profile):
        name, key = parse_ref(ref).k8s_secret
        found = await asyncio.to_thread(ctx.kube.read_secret, ctx.namespace, name)
        if found is None or key not in (found.get("data") or {}):
            raise SecretError(f"secret reference {ref}: no key {key!r} in Secret {ctx.namespace}/{name}",
                              remedy="create it first, or use an env:/file: reference")


def k8s_refs(profile: InstallProfile) -> list[str]:
    refs = [profile.postgres.password, profile.redis.password, profile.clerk.secret_key,
            profile.clickhouse.backup.credentials, profile.images.pull_secret,
            *profile.platform.model_api_keys.values()]
    tls = profile.ingress.tls
    if profile.ingress.enabled and tls.enabled:
        refs += [tls.certificate, tls.private_key]
    return [r for r in refs if r is not None and parse_ref(r).kind is RefKind.K8S]
