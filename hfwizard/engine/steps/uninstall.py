"""Day-two step kinds of an uninstall: remove one Helm release; delete the install's data when asked."""

from __future__ import annotations

import asyncio
from typing import Any

from hfwizard.engine.context import StepContext, StepError, StepResult
from hfwizard.engine.helm import HelmError, ReleaseNotFound
from hfwizard.engine.kube import items, not_found
from hfwizard.engine.plan import StepKind
from hfwizard.engine.steps.base import StepRunner, register
from hfwizard.platform.secretspec import MANAGED_BY, MANAGED_BY_LABEL
from hfwizard.store.journal import StepState


@register(StepKind.UNINSTALL)
class UninstallStep(StepRunner):
    """`helm uninstall` of `step.subject`; a release already gone is done (a resume after a kill)."""

    async def run(self, ctx: StepContext) -> StepResult:
        name = ctx.step.subject
        found = await asyncio.to_thread(ctx.kube.release_record, ctx.namespace, name)
        if found is None:
            return StepResult(f"release {name} is not installed", {"release": name, "removed": False})
        ctx.note(action="uninstall", release=name, revision=found[0])
        await ctx.fence()
        ctx.kill_point("mid")
        try:
            await ctx.helm.uninstall(name, ctx.namespace, wait=True, timeout_s=max(1.0, ctx.remaining()),
                                     on_log=lambda line: ctx.log(line, source="helm"))
        except ReleaseNotFound:
            pass  # removed between our look and Helm's: what we wanted
        except HelmError as exc:
            raise StepError(f"Helm: {exc.message}", exc.remedy or "run `hfwizard uninstall` again to retry") from None
        return StepResult(f"release {name} removed (was revision {found[0]})", {"release": name, "removed": True})

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        found = await asyncio.to_thread(ctx.kube.release_record, ctx.namespace, ctx.step.subject)
        if found is not None:
            return False, f"release {ctx.step.subject} is back at revision {found[0]}"
        return True, f"release {ctx.step.subject} is gone"


@register(StepKind.DELETE_OBJECTS)
class DeleteObjectsStep(StepRunner):
    """Objects hfwizard applied itself (ClickHouse's installations, setup Job, backup CronJob ...), each
    deleted and waited for until gone, in the step's order: an operator's finalizers run while its
    release is still installed, so this step comes before the releases are removed."""

    async def run(self, ctx: StepContext) -> StepResult:
        gone = 0
        for obj in ctx.step.objects:
            await ctx.fence()
            if await asyncio.to_thread(_delete_object, ctx.kube.api_client, obj):
                ctx.log(f"{obj['kind']} {obj['metadata']['name']} deleted")
                gone += 1
            await _until_gone(ctx, obj)
        return StepResult(f"{gone} of {len(ctx.step.objects)} objects deleted (the others were not there)")

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        for obj in ctx.step.objects:
            if await asyncio.to_thread(_object_exists, ctx.kube.api_client, obj):
                return False, f"{obj['kind']} {obj['metadata']['name']} is back"
        return True, "every object is gone"


def _object_path(obj: dict[str, Any]) -> str:
    api, meta = obj["apiVersion"], obj["metadata"]
    base = "/api/v1" if api == "v1" else f"/apis/{api}"
    # The plural of each kind hfwizard applies is its lower-case name plus "s".
    return f"{base}/namespaces/{meta['namespace']}/{obj['kind'].lower()}s/{meta['name']}"


def _delete_object(api_client: Any, obj: dict[str, Any]) -> bool:
    try:
        api_client.call_api(_object_path(obj), "DELETE", body={"propagationPolicy": "Background"},
                            header_params={"Content-Type": "application/json"}, _preload_content=False)
        return True
    except Exception as exc:
        if not_found(exc):
            return False
        raise


def _object_exists(api_client: Any, obj: dict[str, Any]) -> bool:
    try:
        api_client.call_api(_object_path(obj), "GET", _preload_content=False)
        return True
    except Exception as exc:
        if not_found(exc):
            return False
        raise


async def _until_gone(ctx: StepContext, obj: dict[str, Any]) -> None:
    stall = ctx.profile.install.stall_seconds
    waited = 0.0
    while await asyncio.to_thread(_object_exists, ctx.kube.api_client, obj):
        if waited > stall:
            raise StepError(f"{obj['kind']} {obj['metadata']['name']} is still there {stall}s after its deletion "
                            "(install.stallSeconds): a finalizer waits for its operator",
                            remedy="check that its operator runs (`hfwizard status NAME`), then uninstall again")
        await asyncio.sleep(ctx.run.poll_interval)
        waited += ctx.run.poll_interval


@register(StepKind.DELETE_DATA)
class DeleteDataStep(StepRunner):
    """The install's PersistentVolumeClaims and the Secrets hfwizard wrote (generated passwords too).

    Only in a plan the operator confirmed by typing the install's name (`hfwizard uninstall
    --delete-data`): without the generated Secrets, kept volumes could not be opened again.
    """

    async def run(self, ctx: StepContext) -> StepResult:
        core = ctx.kube.core
        ns = ctx.namespace
        claims = await asyncio.to_thread(items, core.list_namespaced_persistent_volume_claim, ns)
        owned = await asyncio.to_thread(items, core.list_namespaced_secret, ns,
                                        label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}")
        for claim in claims:
            await ctx.fence()
            await asyncio.to_thread(_delete, core.delete_namespaced_persistent_volume_claim, claim, ns)
            ctx.log(f"PersistentVolumeClaim {claim['metadata']['name']} deleted")
        for secret in owned:
            await ctx.fence()
            await asyncio.to_thread(_delete, core.delete_namespaced_secret, secret, ns)
            ctx.log(f"Secret {secret['metadata']['name']} deleted")
        return StepResult(f"{len(claims)} PersistentVolumeClaims and {len(owned)} Secrets deleted",
                          {"claims": len(claims), "secrets": len(owned)})

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        claims = await asyncio.to_thread(items, ctx.kube.core.list_namespaced_persistent_volume_claim, ctx.namespace)
        if claims:
            return False, f"{len(claims)} PersistentVolumeClaims are still there"
        return True, "no PersistentVolumeClaims left"


def _delete(call: Any, obj: dict[str, Any], namespace: str) -> None:
    try:
        call(obj["metadata"]["name"], namespace)
    except Exception as exc:
        if not not_found(exc):
            raise
