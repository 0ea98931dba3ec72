"""Platform catalogs: the real services of each Highflame release, loaded from `catalogs/<version>.yaml`.

A catalog is data, shipped in the package: per service its chart, port, probes, routes, mounts, node group,
default resources and autoscaling, seed module, environment (as sources, never values) and what it waits for.
`values.py` turns a profile plus a catalog into Helm values and Secret specs.
"""

from __future__ import annotations

import re
import threading
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from hfwizard.errors import BadInput

CORE: Literal["core"] = "core"
"""The module of services every install gets, whatever the seed modules say."""
MODULES = ("guardrails", "policy", "agentIdentity", "mcpGateway", "modelScanning", "redTeaming", "observability")
ENV_KINDS = ("fixed", "profile", "url", "public", "secret", "generated")
"""How a variable gets its value; see the head of any catalog file."""

_VERSION = re.compile(r"^[0-9]{4}\.[0-9]{2}(\.[0-9]+)?$")


class CatalogError(BadInput):
    """A platform release that is not shipped, or a catalog file that does not hold together."""


class _Data(BaseModel):
    # Built on first use: validating the profile lists the shipped releases without loading one.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True,
                              defer_build=True)


class ChartPin(_Data):
    name: str
    version: str
    repository: str | None = None
    """Set where the chart comes from another repository than the platform's (the ClickHouse operator)."""


class Charts(_Data):
    generic: ChartPin
    redteam: ChartPin
    ingress: ChartPin


class ClickHouseFacts(_Data):
    namespace: str
    service: str
    database: str
    user: str


class Images(_Data):
    registry: str
    repository: str
    """Path under the registry; `{image}` is the service's image name."""
    tag: str


class Probes(_Data):
    liveness: str
    readiness: str
    port: int | None = None
    """Probe port when it is not the service port (the collector's health port)."""


class Route(_Data):
    host: str
    """One of the catalog's host prefixes (control, api, ...)."""
    paths: list[str]


class Mount(_Data):
    secret: str
    path: str
    key: str | None = None
    """Mount one key of the Secret at `path` (a subPath) instead of the whole Secret as a folder."""
    optional: bool = False
    """The Secret may be absent (the install makes it only when the profile gives its content)."""


class ServiceAccount(_Data):
    cloud_identity: bool = False
    """Its ServiceAccount carries the cloud's workload identity annotation (IRSA, GKE, Azure)."""
    secrets_access: bool = False
    """It manages Secrets in its namespace, so its Role grants that."""


class Autoscaling(_Data):
    enabled: bool = True
    min: int = 2
    max: int = 6


class Resources(_Data):
    requests: dict[str, str]
    limits: dict[str, str]


class Service(_Data):
    chart: Literal["generic", "redteam"]
    module: str
    note: str | None = None
    release: str | None = None
    """Release and object name when it is not `highflame-<service>`."""
    image: str | None = None
    """Image name when it is not the service's name."""
    port: int
    ports: dict[str, int] = {}
    """Named service ports, when the service has several (the first is its main port)."""
    probes: Probes
    node_group: Literal["general", "gpu"] = "general"
    resources: Resources
    autoscaling: Autoscaling = Autoscaling()
    restart_on_upgrade: bool = False
    routes: list[Route] = []
    mounts: list[Mount] = []
    service_account: ServiceAccount = ServiceAccount()
    databases: list[str] = []
    wait_for: list[str] = []
    hook_waits: int = Field(default=0, ge=0)
    """Readiness waits the chart's pre-install hooks add before its workloads (a seeder Job): the engine
    gives a free slot to the longest chain of waits first."""
    env: dict[str, str] = {}
    extra_values: dict[str, Any] = {}
    """Chart values specific to this service (the red-teaming workers)."""

    @field_validator("module")
    @classmethod
    def _known_module(cls, v: str) -> str:
        if v != CORE and v not in MODULES:
            raise ValueError(f"module {v!r} is neither core nor one of {', '.join(MODULES)}")
        return v

    @field_validator("env")
    @classmethod
    def _env_sources(cls, v: dict[str, str]) -> dict[str, str]:
        for name, source in v.items():
            kind, sep, arg = source.partition(":")
            if not sep or kind not in ENV_KINDS or (not arg and kind != "fixed"):
                raise ValueError(f"{name}: {source!r} is not one of {', '.join(k + ':' for k in ENV_KINDS)}")
        return v


class Catalog(_Data):
    """One Highflame platform release."""

    platform: str
    repository: str
    charts: Charts
    clickhouse_operator: ChartPin
    clickhouse: ClickHouseFacts
    images: Images
    node_group_label: str
    hosts: list[str]
    databases: list[str]
    services: dict[str, Service] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        names = set(self.services)
        for name, svc in self.services.items():
            for dep in svc.wait_for:
                if dep not in names:
                    raise ValueError(f"service {name} waits for {dep!r}, which is not in the catalog")
            for route in svc.routes:
                if route.host not in self.hosts:
                    raise ValueError(f"service {name} routes host {route.host!r}, not one of {self.hosts}")
            for db in svc.databases:
                if db not in self.databases:
                    raise ValueError(f"service {name} uses database {db!r}, not in the catalog's databases")
            for var, source in svc.env.items():
                kind, _, arg = source.partition(":")
                if kind == "url" and arg.split("/", 1)[0] not in names:
                    raise ValueError(f"service {name}: {var} points at unknown service {arg!r}")
                if kind == "public" and arg.split("/", 1)[0] not in self.hosts:
                    raise ValueError(f"service {name}: {var} points at unknown host {arg!r}")
        _check_acyclic(self.services)
        return self

    def release_name(self, service: str) -> str:
        """The Helm release (and object) name of a service: `highflame-<service>` unless the catalog says."""
        return self.services[service].release or f"highflame-{service}"

    def chart_pin(self, service: str) -> ChartPin:
        return getattr(self.charts, self.services[service].chart)

    def pins(self) -> list[ChartPin]:
        """Every chart this release installs, the ClickHouse operator included."""
        return [self.charts.generic, self.charts.redteam, self.charts.ingress, self.clickhouse_operator]

    def in_cluster_url(self, service: str, path: str = "") -> str:
        return f"http://{self.release_name(service)}:{self.services[service].port}{path}"


def _check_acyclic(services: dict[str, Service]) -> None:
    state: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"services wait for each other in a circle: {' -> '.join((*trail, name))}")
        state[name] = 1
        for dep in services[name].wait_for:
            visit(dep, (*trail, name))
        state[name] = 2

    for name in services:
        visit(name, ())


def available_versions() -> list[str]:
    """Platform releases shipped in this package, oldest first."""
    files = resources.files(__package__).joinpath("catalogs").iterdir()
    found = [f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml")]
    return sorted((v for v in found if _VERSION.match(v)), key=_vkey)


def latest() -> str:
    """The newest platform release shipped."""
    versions = available_versions()
    if not versions:
        raise CatalogError("no platform catalog is shipped in hfwizard/platform/catalogs")
    return versions[-1]


def load_catalog(version: str | None = None) -> Catalog:
    """The catalog of one platform release (default: the newest); a clear error names what is shipped."""
    with _loading:  # several preflight checks ask at once from their threads: parse it once
        return _load(version or latest())


_loading = threading.Lock()


@cache
def _load(version: str) -> Catalog:
    raw = _raw(version, ())
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(f"platform catalog {version} does not hold together: {exc}") from None


def _raw(version: str, seen: tuple[str, ...]) -> dict[str, Any]:
    from ruamel.yaml import YAML

    if version not in available_versions():
        shipped = ", ".join(available_versions()) or "none"
        raise CatalogError(f"platform release {version!r} is not shipped with this hfwizard "
                           f"(shipped: {shipped}); set platform.version to one of them or update hfwizard")
    if version in seen:
        raise CatalogError(f"platform catalog {version} is its own base")
    text = resources.files(__package__).joinpath("catalogs", f"{version}.yaml").read_text(encoding="utf-8")
    data = YAML(typ="safe").load(text)
    if not isinstance(data, dict):
        raise CatalogError(f"platform catalog {version} is not a mapping")
    base = data.pop("base", None)
    if base is None:
        return data
    return deep_merge(_raw(str(base), (*seen, version)), data)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid on `base`: mappings merge key by key, anything else replaces (a fresh dict; inputs untouched)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _vkey(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))
