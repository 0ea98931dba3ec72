"""Kubernetes checks: API, version, Ready workers and their size, storage, permissions, ingress class."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hfwizard import requirements
from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.checks.threads import in_thread

MIN_VERSION = requirements.KUBERNETES.tuple
MIN_WORKERS = requirements.WORKERS_MIN
CORES = requirements.WORKER_CORES
MEMORY_GIB = requirements.WORKER_MEMORY_GIB
_V = requirements.KUBERNETES.text
span = requirements.span
GIB = Decimal(2**30)
# Machines sold as "16 GB" report a little less (firmware, GB vs GiB): allow 5 % under the floor.
MEMORY_SLACK = Decimal("0.95")
CONTROL_PLANE_KEYS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
DEFAULT_SC = ("storageclass.kubernetes.io/is-default-class",
              "storageclass.beta.kubernetes.io/is-default-class")
DEFAULT_IC = "ingressclass.kubernetes.io/is-default-class"

# What the install creates in its namespace (verb, API group, resource); namespaces are cluster-wide.
REQUIRED_ACCESS: tuple[tuple[str, str, str], ...] = (
    ("create", "", "namespaces"),
    ("create", "", "secrets"),
    ("list", "", "secrets"),  # Helm keeps its release records in Secrets and lists them on upgrade
    ("create", "apps", "deployments"),
    ("create", "apps", "statefulsets"),
    ("create", "", "services"),
    ("create", "", "configmaps"),
    ("create", "networking.k8s.io", "ingresses"),
    ("create", "policy", "poddisruptionbudgets"),
    ("create", "autoscaling", "horizontalpodautoscalers"),
    ("create", "batch", "cronjobs"),
    ("create", "coordination.k8s.io", "leases"),
)


@dataclass(frozen=True)
class KubeTarget:
    """Which cluster and what the profile asks of it."""

    kubeconfig: str | None = None  # None: $KUBECONFIG or ~/.kube/config
    context: str | None = None  # None: the file's current context
    namespace: str = "highflame"
    ingress_enabled: bool = True
    ingress_class: str | None = "nginx"  # None: the cluster's default IngressClass
    storage_class: str | None = None  # None: the cluster's default StorageClass
    request_timeout: float = 8.0  # every API call's connect and read timeout


class KubeUnavailable(Exception):
    """The API cannot be used: `message` names the server or file, `remedy` says what to do."""

    def __init__(self, message: str, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy


@dataclass
class KubeSession:
    """One API client for all Kubernetes checks: the kubeconfig is loaded and /version asked once."""

    target: KubeTarget
    server: str = "?"
    _tasks: dict[str, asyncio.Future[Any]] = field(default_factory=dict)

    def _once(self, name: str, make: Callable[[], Awaitable[Any]]) -> asyncio.Future[Any]:
        # Several checks await the same answer concurrently; the first one starts it.
        if name not in self._tasks:
            self._tasks[name] = asyncio.ensure_future(make())
        return self._tasks[name]

    async def client(self) -> Any:
        return await self._once("client", lambda: in_thread(self._load))

    def _load(self) -> Any:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        from hfwizard.errors import BadInput
        from hfwizard.validate import check_kubeconfig

        cfg = client.Configuration()
        where = self.target.kubeconfig or "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
        if self.target.kubeconfig:
            try:  # the client would hang on a FIFO and read /dev/zero until memory runs out
                check_kubeconfig(self.target.kubeconfig, field="kubeconfig")
            except BadInput as exc:
                raise KubeUnavailable(exc.message, exc.remedy or "point --kubeconfig at the file itself") from None
        try:
            config.load_kube_config(config_file=self.target.kubeconfig, context=self.target.context,
                                    client_configuration=cfg, persist_config=False)
        except ConfigException as exc:
            text = str(exc).splitlines()[0] if str(exc) else "invalid kubeconfig"
            if "context" in text.lower() and self.target.context:
                raise KubeUnavailable(f"{where}: context {self.target.context!r} not found",
                                      "pick a context from `kubectl config get-contexts`, or fix --context"
                                      ) from None
            raise KubeUnavailable(f"{where} cannot be used: {text}",
                                  "point --kubeconfig at a working file (aws eks update-kubeconfig, "
                                  "gcloud container clusters get-credentials, az aks get-credentials)"
                                  ) from None
        except FileNotFoundError:
            raise KubeUnavailable(f"kubeconfig {where} does not exist",
                                  "pass --kubeconfig FILE, or set target.kubeconfig in the profile") from None
        except Exception as exc:  # exec plugins, malformed YAML: report the kind, not a traceback
            raise KubeUnavailable(f"{where} could not be loaded ({type(exc).__name__})",
                                  "run `kubectl --kubeconfig FILE version` to see what is wrong") from None
        cfg.retries = 0  # a refused or silent server should fail inside the check's timeout, not retry
        self.server = cfg.host
        return client.ApiClient(cfg)

    async def version(self) -> dict[str, str]:
        return dict(await self._once("version", lambda: self.call("VersionApi", "get_code")))

    async def nodes(self) -> list[Any]:
        return list(await self._once("nodes", lambda: self.call("CoreV1Api", "list_node")))

    async def call(self, api: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call `kubernetes.client.<api>(client).<method>` off the loop; failures become KubeUnavailable
        (unreachable, rejected credentials) or the client's ApiException (an HTTP error status)."""
        api_client = await self.client()

        def run() -> Any:
            from kubernetes import client

            fn = getattr(getattr(client, api)(api_client), method)
            timeout = self.target.request_timeout
            answer = fn(*args, _request_timeout=(timeout, timeout), **kwargs)
            if method == "get_code":
                return {"git_version": answer.git_version, "major": answer.major, "minor": answer.minor}
            if method.startswith("list_"):
                return list(answer.items)
            return answer

        try:
            return await in_thread(run)
        except Exception as exc:
            raise self._explain(exc) from None

    def _explain(self, exc: Exception) -> Exception:
        from kubernetes.client.exceptions import ApiException

        if isinstance(exc, ApiException):
            if exc.status == 401:
                return KubeUnavailable(f"the API server {self.server} rejected the credentials (401)",
                                       "refresh them: aws eks update-kubeconfig / gcloud container clusters "
                                       "get-credentials / az aks get-credentials, or log in again")
            return exc
        return unreachable(self.server, exc, self.target.request_timeout)


REACH_REMEDY = "check the VPN or network path to the cluster, and that the kubeconfig points at the right endpoint"


def unreachable(server: str, exc: Exception, timeout: float) -> KubeUnavailable:
    """What a failed connection to the API server means, in words (no kubernetes import: the status
    command's plain reader uses it too)."""
    text = f"{type(exc).__name__}: {getattr(exc, 'reason', '') or exc}"
    low = text.lower()
    if "certificate" in low or "ssl" in low:
        return KubeUnavailable(f"TLS with the API server {server} failed (certificate not trusted)",
                               "check certificate-authority-data in the kubeconfig")
    if "refused" in low:
        why = "connection refused"
    elif "timed out" in low or "timeout" in low:
        why = f"no answer within {timeout:g} s"
    elif "name or service not known" in low or "nodename nor servname" in low or "resolution" in low:
        why = "its host name does not resolve"
    else:
        why = type(exc).__name__
    return KubeUnavailable(f"cannot reach the API server {server}: {why}", REACH_REMEDY)


def kubernetes_checks(target: KubeTarget, *, prefix: str = "kubernetes", profile: Any = None) -> list[Check]:
    """The Kubernetes checks in display order; they share one session (one kubeconfig load). With the
    profile, also whether its node groups exist and hold their services' requests."""
    session = KubeSession(target)

    async def node_groups(s: KubeSession, cid: str, title: str, started: float) -> CheckResult:
        from hfwizard.checks.node_groups import check_node_groups

        return await check_node_groups(s, profile, cid, title, started)

    specs: list[tuple[str, str, _CheckFn]] = [
        ("api", "Kubernetes API reachable", _check_api),
        ("version", f"Kubernetes {_V} or newer", _check_version),
        ("nodes", f"At least {MIN_WORKERS} Ready worker nodes", _check_nodes),
        ("node-size", f"At least {MIN_WORKERS} workers of {span(CORES)} cores, {span(MEMORY_GIB)} GiB",
         _check_node_size),
        ("storage-class", "StorageClass for ClickHouse", _check_storage_class),
        ("permissions", "Permission to create the platform's objects", _check_permissions),
        ("ingress-class", "IngressClass exists", _check_ingress_class),
    ]
    if profile is not None:
        specs.insert(4, ("node-groups", "Node groups hold the services' requests", node_groups))
    return [Check(f"{prefix}/{name}", title, _bound(session, fn, f"{prefix}/{name}", title))
            for name, title, fn in specs]


_CheckFn = Callable[[KubeSession, str, str, float], Awaitable[CheckResult]]


def _bound(session: KubeSession, fn: _CheckFn, cid: str, title: str) -> Callable[[], Awaitable[CheckResult]]:
    async def run() -> CheckResult:
        started = time.monotonic()
        try:
            return await fn(session, cid, title, started)
        except KubeUnavailable as exc:
            if cid.endswith("/api"):
                return result(cid, title, Status.FAIL, exc.message, exc.remedy, started)
            return result(cid, title, Status.SKIPPED, "not checked: the Kubernetes API is not usable "
                          "(see kubernetes/api)", None, started)
    return run


async def _check_api(s: KubeSession, cid: str, title: str, started: float) -> CheckResult:
    await s.version()
    ctx = f" (context {s.target.context})" if s.target.context else ""
    return result(cid, title, Status.PASS, f"the API server {s.server} answered{ctx}", None, started,
                  server=s.server)


def parse_version(git_version: str, major: str = "", minor: str = "") -> tuple[int, int] | None:
    """(major, minor) from gitVersion "v1.32.3-eks-..." or from major/minor ("1", "32+")."""
    m = re.match(r"^v?(\d+)\.(\d+)", git_version or "")
    if m:
        return int(m.group(1)), int(m.group(2))
    digits = re.match(r"\d+", major or ""), re.match(r"\d+", minor or "")
    if digits[0] and digits[1]:
        return int(digits[0].group()), int(digits[1].group())
    return None


async def _check_version(s: KubeSession, cid: str, title: str, started: float) -> CheckResult:
    info = await s.version()
    got = parse_version(info.get("git_version") or "", info.get("major") or "", info.get("minor") or "")
    shown = info.get("git_version") or f"{info.get('major')}.{info.get('minor')}"
    if got is None:
        return result(cid, title, Status.WARN,
                      f"the API server reports a version hfwizard cannot read: {shown!r}",
                      f"confirm the cluster runs Kubernetes {_V} or newer", started)
    if got < MIN_VERSION:
        return result(cid, title, Status.FAIL, f"the cluster runs Kubernetes {got[0]}.{got[1]} ({shown}); "
                      f"Highflame needs {_V} or newer",
                      f"upgrade the control plane (and then the node groups) to {_V} or newer", started,
                      version=shown)
    return result(cid, title, Status.PASS, f"Kubernetes {shown}", None, started, version=shown)


@dataclass(frozen=True)
class NodeView:
    name: str
    ready: bool
    schedulable: bool
    control_plane: bool
    tainted: bool  # a NoSchedule/NoExecute taint other than the control plane's
    cpu_capacity: Decimal | None
    mem_capacity: Decimal | None  # bytes
    cpu_allocatable: Decimal | None
    mem_allocatable: Decimal | None

    @property
    def usable_worker(self) -> bool:
        return not self.control_plane and self.ready and self.schedulable and not self.tainted


def node_view(node: Any) -> NodeView:
    """The facts the checks need from a V1Node."""
    from kubernetes.utils import parse_quantity

    def quantity(values: dict[str, str] | None, key: str) -> Decimal | None:
        try:
            return Decimal(parse_quantity(values[key])) if values and key in values else None
        except (ValueError, ArithmeticError):
            return None

    meta, spec, status = node.metadata, node.spec, node.status
    labels = meta.labels or {}
    taints = (spec.taints if spec else None) or []
    cp_taint = any(t.key in CONTROL_PLANE_KEYS for t in taints)
    other_taint = any(t.key not in CONTROL_PLANE_KEYS and t.effect in ("NoSchedule",
                                                                       "NoExecute") for t in taints)
    conditions = (status.conditions if status else None) or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    cap = status.capacity if status else None
    alloc = status.allocatable if status else None
    return NodeView(meta.name, ready, not bool(spec and spec.unschedulable),
                    any(k in labels for k in CONTROL_PLANE_KEYS) or cp_taint, other_taint,
                    quantity(cap, "cpu"), quantity(cap, "memory"), quantity(alloc, "cpu"), quantity(alloc,
                                                                                                    "memory"))


def _names(nodes: list[NodeView], limit: int = 6) -> str:
    names = [n.name for n in nodes]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


async def _check_nodes(s: KubeSession, cid: str, title: str, started: float) -> CheckResult:
    views = [node_view(n) for n in await s.nodes()]
    workers = [v for v in views if not v.control_plane]
    usable = [v for v in workers if v.usable_worker]
    left_out = []
    for label, group in (("not Ready", [v for v in workers if not v.ready]),
                         ("cordoned", [v for v in workers if v.ready and not v.schedulable]),
                         ("tainted NoSchedule",
                          [v for v in workers if v.ready and v.schedulable and v.tainted])):
        if group:
            left_out.append(f"{len(group)} {label} ({_names(group)})")
    extra = f"; not counted: {'; '.join(left_out)}" if left_out else ""
    if len(usable) < MIN_WORKERS:
        return result(cid, title, Status.FAIL,
                      f"{len(usable)} Ready, schedulable worker node{'s' * (len(usable) != 1)}; "
                      f"Highflame needs at least {MIN_WORKERS}{extra}",
                      f"scale the node group to at least {MIN_WORKERS} workers, or fix the nodes listed",
                      started, workers=len(usable))
    return result(cid, title, Status.PASS, f"{len(usable)} Ready, schedulable worker nodes{extra}", None,
                  started, workers=len(usable))


def _fmt_cores(v: Decimal | None) -> str:
    return "?" if v is None else f"{v.normalize():f}"


def _fmt_gib(v: Decimal | None) -> str:
    return "?" if v is None else f"{(v / GIB):.1f}"


async def _check_node_size(s: KubeSession, cid: str, title: str, started: float) -> CheckResult:
    # Judged on capacity (the machine's size, which is what the sizing guide states): allocatable is
    # always below it by the kubelet's reservation (an 8-core node offers ~7.9 cores, a 16 GiB one
    # 13–15 GiB depending on the cloud), so a floor on allocatable would fail every right-sized node.
    # Allocatable is shown beside it. Without capacity, allocatable is all there is.
    workers = [v for v in (node_view(n) for n in await s.nodes()) if v.usable_worker]
    if not workers:
        return result(cid, title, Status.SKIPPED, "not checked: no Ready, schedulable worker nodes "
                      "(see kubernetes/nodes)", None, started)
    fit: list[str] = []
    small: list[str] = []
    large: list[str] = []
    for v in workers:
        cpu = v.cpu_capacity if v.cpu_capacity is not None else v.cpu_allocatable
        mem = v.mem_capacity if v.mem_capacity is not None else v.mem_allocatable
        shown = (f"{v.name} ({_fmt_cores(cpu)} cores, {_fmt_gib(mem)} GiB; allocatable "
                 f"{_fmt_cores(v.cpu_allocatable)} cores, {_fmt_gib(v.mem_allocatable)} GiB)")
        if cpu is None or mem is None or cpu < CORES[0] or mem < MEMORY_GIB[0] * GIB * MEMORY_SLACK:
            small.append(shown)
        elif cpu > CORES[1] or mem > MEMORY_GIB[1] * GIB / MEMORY_SLACK:
            large.append(shown)
        else:
            fit.append(shown)
    return _node_size_verdict(cid, title, started, fit, small, large)


def _listed(nodes: list[str]) -> str:
    return "; ".join(nodes[:4]) + (f"; and {len(nodes) - 4} more" if len(nodes) > 4 else "")


def _node_size_verdict(cid: str, title: str, started: float, fit: list[str], small: list[str],
                       large: list[str]) -> CheckResult:
    """The seed asks for at least six workers of 8–16 cores and 16–32 GiB: extra nodes outside that
    (a small system pool, a GPU node) do not spoil six proper ones."""
    want = f"{CORES[0]}–{CORES[1]} cores and {MEMORY_GIB[0]}–{MEMORY_GIB[1]} GiB"
    extra = f"; smaller nodes besides, not counted: {_listed(small)}" if small else ""
    if len(fit) >= MIN_WORKERS:
        more = f"; larger nodes besides: {_listed(large)}" if large else ""
        return result(cid, title, Status.PASS, f"{len(fit)} workers within {want}{extra}{more}", None,
                      started, within=len(fit))
    if len(fit) + len(large) >= MIN_WORKERS:
        return result(cid, title, Status.WARN, f"{len(fit)} workers within {want}, {len(large)} above: "
                      f"{_listed(large)}{extra}", "larger nodes work but cost more than the sizing guide needs",
                      started, within=len(fit), above=len(large))
    return result(cid, title, Status.FAIL,
                  f"{len(fit) + len(large)} worker node{'s' * (len(fit) + len(large) != 1)} of at least "
                  f"{CORES[0]} cores and {MEMORY_GIB[0]} GiB; Highflame needs {MIN_WORKERS}. "
                  f"Below {want}: {_listed(small)}" if small else
                  f"{len(fit) + len(large)} worker nodes of at least {CORES[0]} cores and {MEMORY_GIB[0]} GiB; "
                  f"Highflame needs {MIN_WORKERS}",
                  f"give the node group at least {MIN_WORKERS} nodes of at least {CORES[0]} cores and "
                  f"{MEMORY_GIB[0]} GiB", started, within=len(fit), below=len(small))


async def _check_storage_class(s: KubeSession, cid: str, title: str, started: float) -> CheckResult:
    classes = await s.call("StorageV1Api", "list_storage_class")
    names = sorted(c.metadata.name for c in classes)
    defaults = [c.metadata.name for c in classes
                if any((c.metadata.annotations or {}).get(k) == "true" for k in DEFAULT_SC)]
    wanted = s.target.storage_class
    if wanted:
        if wanted in names:
            return result(cid, title, Status.PASS, f"StorageClass {wanted} exists (clickhouse.storageClass)",
                          None, started)
        return result(cid, title, Status.FAIL,
                      f"StorageClass {wanted!r} (clickhouse.storageClass) does not exist; "
                      f"the cluster has: {', '.join(names) or 'none'}",
                      "set clickhouse.storageClass to one of those, or create the class", started)
    if not defaults:
        return result(cid, title, Status.FAIL, "the cluster has no default StorageClass"
                      + (f" (classes: {', '.join(names)})" if names else " and no StorageClass at all"),
                      "mark one as default (kubectl annotate storageclass NAME "
                      "storageclass.kubernetes.io/is-default-class=true) or set clickhouse.storageClass",
                      started)
    if len(defaults) > 1:
        return result(cid, title, Status.WARN,
                      f"several default StorageClasses: {', '.join(sorted(defaults))}",
                      "keep one default, or set clickhouse.storageClass explicitly", started)
    return result(cid, title, Status.PASS, f"default StorageClass {defaults[0]}", None, started)


async def _check_permissions(s: KubeSession, cid: str, title: str, started: float) -> CheckResult:
    ns = s.target.namespace
    # The client is imported on the checks' pool first: `from kubernetes import client` on the event loop
    # while that import runs waits for it under the import lock, and holds every check for 0.5-3 s.
    await s.client()

    async def review(verb: str, group: str, resource: str) -> bool:
        from kubernetes import client

        attrs = client.V1ResourceAttributes(verb=verb, group=group, resource=resource,
                                            namespace=None if resource == "namespaces" else ns)
        spec = client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs)
        body = client.V1SelfSubjectAccessReview(spec=spec)
        answer = await s.call("AuthorizationV1Api", "create_self_subject_access_review", body)
        return bool(answer.status and answer.status.allowed)

    allowed = await asyncio.gather(*(review(*access) for access in REQUIRED_ACCESS))
    denied = [f"{verb} {resource}" for (verb, _, resource), ok in zip(REQUIRED_ACCESS, allowed, strict=True)
              if not ok]
    if "create namespaces" in denied and await _namespace_exists(s, ns):
        denied.remove("create namespaces")  # it is there already: the install will not create it
    if denied:
        return result(cid, title, Status.FAIL, f"not allowed in namespace {ns}: {', '.join(denied)}",
                      "grant these to the identity in the kubeconfig (a Role/ClusterRole binding), "
                      "or run as a cluster administrator", started, denied=", ".join(denied))
    return result(cid, title, Status.PASS,
                  f"allowed to create every kind of object the install needs in {ns}",
                  None, started)


async def _namespace_exists(s: KubeSession, ns: str) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        await s.call("CoreV1Api", "read_namespace", ns)
    except ApiException:
        return False
    return True


async def _check_ingress_class(s: KubeSession, cid: str, title: str, started: float) -> CheckResult:
    if not s.target.ingress_enabled:
        return result(cid, title, Status.SKIPPED, "ingress is disabled in the profile", None, started)
    classes = await s.call("NetworkingV1Api", "list_ingress_class")
    names = sorted(c.metadata.name for c in classes)
    wanted = s.target.ingress_class
    if wanted:
        if wanted in names:
            return result(cid, title, Status.PASS, f"IngressClass {wanted} exists", None, started)
        return result(cid, title, Status.FAIL, f"IngressClass {wanted!r} (ingress.className) does not exist; "
                      f"the cluster has: {', '.join(names) or 'none'}",
                      "install that ingress controller first, or set ingress.className to an existing class",
                      started)
    defaults = [c.metadata.name for c in classes if (c.metadata.annotations or {}).get(DEFAULT_IC) == "true"]
    if defaults:
        return result(cid, title, Status.PASS, f"no ingress.className set; the default IngressClass is "
                      f"{defaults[0]}", None, started)
    return result(cid, title, Status.FAIL,
                  "no ingress.className set and the cluster has no default IngressClass"
                  + (f" (classes: {', '.join(names)})" if names else ""),
                  "set ingress.className, or install an ingress controller", started)


def read_cluster_secret(target: KubeTarget, name: str, key: str) -> str:
    """The value of `key` in Secret `name` of the target namespace (a `k8s:` reference), read synchronously.

    Raises SecretError naming the Secret and key, never the value."""
    import base64

    from hfwizard.errors import SecretError

    where = f"Secret {target.namespace}/{name}"
    session = KubeSession(target)
    try:
        api_client = session._load()
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            secret = client.CoreV1Api(api_client).read_namespaced_secret(
                name, target.namespace, _request_timeout=(target.request_timeout, target.request_timeout))
        except ApiException as exc:
            if exc.status == 404:
                raise SecretError(f"{where} does not exist in the cluster",
                                  remedy=f"create it (kubectl -n {target.namespace} create secret "
                                         f"generic {name} "
                                         f"--from-literal={key}=...) or use another reference") from None
            raise SecretError(f"{where} cannot be read ({exc.status} {exc.reason})",
                              remedy="allow this identity to get Secrets in the namespace") from None
    except KubeUnavailable as exc:
        raise SecretError(f"{where} cannot be read: {exc.message}", remedy=exc.remedy) from None
    except SecretError:
        raise
    except Exception as exc:
        raise SecretError(f"{where} cannot be read ({type(exc).__name__})") from None
    data = secret.data or {}
    if key not in data:
        raise SecretError(f"{where} has no key {key!r}",
                          remedy=f"keys there: {', '.join(sorted(data)) or 'none'}")
    return base64.b64decode(data[key]).decode("utf-8").rstrip("\r\n")
