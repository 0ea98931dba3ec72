"""What a kubelet checks before a scheduled pod's containers start, worded as the kubelet words it.

Missing Secret/ConfigMap volumes hold the pod in ContainerCreating (FailedMount), missing env sources
give CreateContainerConfigError, images from an unreachable registry ErrImagePull; a missing image
pull secret is only a warning, as on a real node. A missing object that appears later lets the pod
start: the controllers re-check whenever Secrets or ConfigMaps change, as the kubelet retries.

Registries: the public ones (ghcr.io, Docker Hub) are stood in for, reachable unless steered otherwise.
A registry the operator runs (a mirror) cannot be stood in for: `reach` tries it for real from this
machine, where the emulated nodes live, and its failure is what a node's pull would say.
"""

from __future__ import annotations

import socket
from collections.abc import Collection, Iterator, Mapping

from hfwizard.sandbox.emulator.api import JSON
from hfwizard.sandbox.emulator.store import Store

__all__ = ["check", "missing_pull_secrets", "reach", "registry_of", "unreachable_causes"]

Problem = tuple[str, str, str, str]  # waiting reason, waiting message, event reason, event message


def registry_of(image: str) -> str:
    """The registry host of an image reference (docker.io when the first part is not a host)."""
    first, _, rest = image.partition("/")
    return first if rest and ("." in first or ":" in first or first == "localhost") else "docker.io"


def _host_port(registry: str) -> tuple[str, int]:
    host, _, port = registry.partition(":")
    return host, int(port) if port.isdigit() else 443


def no_such_host(registry: str) -> str:
    return f"dial tcp: lookup {_host_port(registry)[0]}: no such host"


def unreachable_causes(registries: Collection[str] | Mapping[str, str]) -> Mapping[str, str]:
    """registry -> why a pull from it fails, in containerd's words ("no such host" for bare names)."""
    if isinstance(registries, Mapping):
        return dict(registries)
    return {r: no_such_host(r) for r in registries}


def reach(registry: str, timeout: float = 2.0) -> str | None:
    """Try `registry` (host[:port], 443 by default) as a node's pull would start: a DNS lookup, then a TCP
    connection. None when it answers, else the cause in containerd's words. Blocking: call it in a thread."""
    host, port = _host_port(registry)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return f"dial tcp: lookup {host}: no such host"
    family, kind, proto, _, address = infos[0]
    where = f"{address[0]}:{port}"
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
    except ConnectionRefusedError:
        return f"dial tcp {where}: connect: connection refused"
    except TimeoutError:
        return f"dial tcp {where}: i/o timeout"
    except OSError as exc:
        return f"dial tcp {where}: connect: {exc.strerror or exc}"
    return None


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


def check(store: Store, namespace: str | None, spec: JSON, unreachable: Mapping[str, str] | None = None
          ) -> Problem | None:
    """The first thing that keeps a scheduled pod's containers from starting, or None. `unreachable` maps
    the registries pulls fail from to the cause (see `unreachable_causes`)."""
    unreachable = unreachable or {}
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
            cause = unreachable[registry_of(image)]
            message = f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": {cause}'
            return "ErrImagePull", message, "Failed", f'Failed to pull image "{image}": {message}'
    for container in containers:
        problem = _env_problem(store, namespace, container)
        if problem is not None:
            return "CreateContainerConfigError", problem, "Failed", f"Error: {problem}"
    return None
