"""What a kubelet checks before a scheduled pod's containers start, worded as the kubelet words it.

Missing Secret/ConfigMap volumes hold the pod in ContainerCreating (FailedMount), missing env sources
give CreateContainerConfigError, images from an unreachable registry ErrImagePull; a missing image
pull secret is only a warning, as on a real node. A missing object that appears later lets the pod
start: the controllers re-check whenever Secrets or ConfigMaps change, as the kubelet retries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from hfwizard.sandbox.emulator.api import JSON
from hfwizard.sandbox.emulator.store import Store

__all__ = ["check", "missing_pull_secrets", "registry_of"]

Problem = tuple[str, str, str, str]  # waiting reason, waiting message, event reason, event message


def registry_of(image: str) -> str:
    """The registry host of an image reference (docker.io when the first part is not a host)."""
    first, _, rest = image.partition("/")
    return first if rest and ("." in first or ":" in first or first == "localhost") else "docker.io"


def _exists(store: Store, namespace: str | None, kind: str, name: str) -> JSON | None:
    return store.get_object("v1", kind, namespace, name)


def _volume_sources(volume: JSON) -> Iterator[tuple[str, str, bool]]:
    """(kind, name, optional) of every Secret and ConfigMap a volume mounts."""
    if "secret" in volume:
        yield "Secret", volume["secret"].get("secretName", ""), bool(volume["secret"].get("optional"))
    if "configMap" in volume:
        yield "ConfigMap", volume["configMap"].get("name", ""), bool(volume["configMap"].get("optional"))
    for source in (volume.get("projected") or {}).get("sources") or []:
        for key, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
            if key in source:
                yield kind, source[key].get("name", ""), bool(source[key].get("optional"))


def _env_problem(store: Store, namespace: str | None, container: JSON) -> str | None:
    for source in container.get("envFrom") or []:
        for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            ref = source.get(key)
            if ref and not ref.get("optional") and _exists(store, namespace, kind, ref.get("name", "")) is None:
                return f'{kind.lower()} "{ref.get("name", "")}" not found'
    for env in container.get("env") or []:
        for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            ref = (env.get("valueFrom") or {}).get(key)
            if not ref or ref.get("optional"):
                continue
            obj = _exists(store, namespace, kind, ref.get("name", ""))
            if obj is None:
                return f'{kind.lower()} "{ref.get("name", "")}" not found'
            if ref.get("key") not in (obj.get("data") or {}) and ref.get("key") not in (obj.get("binaryData") or {}):
                return f"couldn't find key {ref.get('key')} in {kind} {namespace}/{ref.get('name', '')}"
    return None


def missing_pull_secrets(store: Store, namespace: str | None, spec: JSON) -> list[str]:
    return [
        ref.get("name", "")
        for ref in spec.get("imagePullSecrets") or []
        if _exists(store, namespace, "Secret", ref.get("name", "")) is None
    ]


def check(store: Store, namespace: str | None, spec: JSON, unreachable: Collection[str] = ()) -> Problem | None:
    """The first thing that keeps a scheduled pod's containers from starting, or None."""
    for volume in spec.get("volumes") or []:
        for kind, name, optional in _volume_sources(volume):
            if not optional and _exists(store, namespace, kind, name) is None:
                missing = f'{kind.lower()} "{name}" not found'
                message = f'MountVolume.SetUp failed for volume "{volume.get("name")}" : {missing}'
                return "ContainerCreating", "", "FailedMount", message
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    for container in containers:
        image = container.get("image", "")
        if registry_of(image) in unreachable:
            cause = f"dial tcp: lookup {registry_of(image)}: no such host"
            message = f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": {cause}'
            return "ErrImagePull", message, "Failed", f'Failed to pull image "{image}": {message}'
    for container in containers:
        problem = _env_problem(store, namespace, container)
        if problem is not None:
            return "CreateContainerConfigError", problem, "Failed", f"Error: {problem}"
    return None
