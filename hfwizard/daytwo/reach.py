"""An install's cluster for a day-two command: its kubeconfig loaded and its API asked once, or an error
naming the file, context or server and what to do (exit 2 for the kubeconfig, 1 for the cluster)."""

from __future__ import annotations

from typing import Any

from hfwizard.errors import BadInput, Failed

PROBE_TIMEOUT = 8.0  # seconds for the kubeconfig's API server to answer /version
OTHER_CLUSTER = "another kubeconfig or context: --kubeconfig FILE / --context NAME"


async def reach(kubeconfig: str | None, context: str | None, *, timeout: float = PROBE_TIMEOUT) -> Any:
    """A Kubernetes ApiClient for the kubeconfig and context (no retries: a status or a bundle must
    not wait on a dead server) once the API has answered. Raises BadInput when the kubeconfig or the
    context cannot be used, Failed when the API server cannot be reached or refuses the credentials."""
    from kubernetes.client.exceptions import ApiException

    from hfwizard.checks.kubernetes import KubeSession, KubeTarget, KubeUnavailable

    session = KubeSession(KubeTarget(kubeconfig, context, request_timeout=timeout))
    try:
        api = await session.client()
    except KubeUnavailable as exc:
        raise BadInput(exc.message, remedy=exc.remedy or OTHER_CLUSTER) from None
    try:
        await session.version()
    except KubeUnavailable as exc:
        raise Failed(exc.message, remedy=f"{exc.remedy}; {OTHER_CLUSTER}" if exc.remedy else OTHER_CLUSTER) from None
    except ApiException:
        pass  # an HTTP status (403 on /version ...): the server answered, the reads say what they may see
    return api


async def reach_static(kubeconfig: str | None, context: str | None, *, timeout: float = PROBE_TIMEOUT) -> Any:
    """As `reach`, through the plain reader (hfwizard.daytwo.kube_read) when the kubeconfig's credentials
    are static, so the kubernetes client is never imported; None when they are not (use `reach`)."""
    import asyncio

    from hfwizard.checks.kubernetes import unreachable
    from hfwizard.daytwo.kube_read import ApiError, reader_for

    reader = reader_for(kubeconfig, context, timeout=timeout)
    if reader is None:
        return None
    try:
        await asyncio.to_thread(reader.items, "/version")
    except ApiError:
        pass  # the server answered (403 on /version ...): the reads say what they may see
    except OSError as exc:  # refused, no such host, timed out, TLS
        why = unreachable(f"{reader.scheme}://{reader.host}:{reader.port}{reader.prefix}", exc, timeout)
        raise Failed(why.message, remedy=f"{why.remedy}; {OTHER_CLUSTER}" if why.remedy else OTHER_CLUSTER) from None
    return reader
