"""Live status of an installed platform: each release's replicas, images, chart, last warning; ClickHouse; ingress."""

# One pass reads the namespace with a handful of list calls run side by side (Helm's release records,
# Deployments, StatefulSets, Events, Ingresses, ClickHouse installations), never one call per
# service, so the whole platform answers in about the time of one `helm list` plus one pod list.
# Objects belong to the release whose name Helm wrote on them (`meta.helm.sh/release-name`).

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from hfwizard.daytwo.dns import lb_from_ingress

RELEASE_ANNOTATION = "meta.helm.sh/release-name"
CHI_GROUP, CHI_VERSION = "clickhouse.altinity.com", "v1"
CHK_GROUP = "clickhouse-keeper.altinity.com"
REQUEST_TIMEOUT = 10.0


@dataclass
class ReleaseStatus:
    """One Helm release (a platform service) as the cluster shows it now."""

    release: str
    chart: str = ""
    chart_version: str = ""
    revision: int = 0
    helm_status: str = ""
    ready: int = 0
    desired: int = 0
    images: list[str] = field(default_factory=list)
    last_warning: str = ""

    @property
    def healthy(self) -> bool:
        return self.helm_status == "deployed" and self.ready >= self.desired


@dataclass
class PlatformStatus:
    namespace: str
    releases: list[ReleaseStatus]
    clickhouse: list[str]  # one line per ClickHouse/Keeper installation: its state
    hosts: list[str]
    load_balancer: list[str]
    problems: list[str]  # what could not be read (a missing kind is not a problem)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for rel, row in zip(self.releases, out["releases"], strict=True):
            row["healthy"] = rel.healthy
        return out

    def lines(self) -> list[str]:
        width = max([len(r.release) for r in self.releases] + [7])
        out = [f"{'RELEASE':<{width}}  READY   CHART                      REV  STATUS     IMAGE"]
        for r in self.releases:
            chart = f"{r.chart}-{r.chart_version}" if r.chart else "-"
            out.append(f"{r.release:<{width}}  {r.ready:>2}/{r.desired:<3}  {chart:<26} {r.revision:>3}  "
                       f"{r.helm_status or '-':<10} {', '.join(r.images) or '-'}")
            if r.last_warning:
                out.append(f"{'':<{width}}  last warning: {r.last_warning}")
        out += [f"ClickHouse: {line}" for line in self.clickhouse] or ["ClickHouse: no installation found"]
        out.append(f"Ingress hosts: {', '.join(self.hosts) or 'none'}")
        out.append(f"Load balancer: {', '.join(self.load_balancer) or 'no address yet'}")
        out += [f"could not read: {p}" for p in self.problems]
        return out


def live_status(api_client: Any, namespace: str) -> PlatformStatus:
    """Read the platform in `namespace` now, through a `kubernetes.client.ApiClient` or a KubeReader
    (hfwizard.daytwo.kube_read: the same lists without the client's import)."""
    from hfwizard.daytwo.kube_read import KubeReader

    start = time.monotonic()
    calls = (_reader_calls(api_client, namespace) if isinstance(api_client, KubeReader)
             else _client_calls(api_client, namespace))
    got: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
        for name, fut in futures.items():
            try:
                got[name] = fut.result()
            except Exception as exc:
                got[name] = []
                if getattr(exc, "status", None) != 404 or name not in ("chi", "chk"):
                    problems.append(f"{name}: {_reason(exc)}")
    releases = _releases(got["records"])
    _add_workloads(releases, got["deployments"] + got["statefulsets"], got["events"])
    hosts, lb = _ingress(got["ingresses"])
    clickhouse = [_clickhouse_line(obj) for obj in got["chk"] + got["chi"]]
    return PlatformStatus(namespace, sorted(releases.values(), key=lambda r: r.release), clickhouse, hosts, lb,
                          problems, round(time.monotonic() - start, 3))


_Calls = dict[str, Callable[[], list[dict[str, Any]]]]


def _client_calls(api_client: Any, namespace: str) -> _Calls:
    from kubernetes import client

    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    net, custom = client.NetworkingV1Api(api_client), client.CustomObjectsApi(api_client)
    # Raw JSON, not the client's models: building models costs more than the request itself.
    kw = {"_request_timeout": REQUEST_TIMEOUT, "_preload_content": False}

    def items(call: Callable[..., Any], *args: Any, **more: Any) -> Callable[[], list[dict[str, Any]]]:
        return lambda: list(json.loads(call(*args, **more, **kw).data).get("items") or [])

    return {
        "records": items(core.list_namespaced_secret, namespace, label_selector="owner=helm"),
        "deployments": items(apps.list_namespaced_deployment, namespace),
        "statefulsets": items(apps.list_namespaced_stateful_set, namespace),
        "events": items(core.list_namespaced_event, namespace, field_selector="type=Warning"),
        "ingresses": items(net.list_namespaced_ingress, namespace),
        "chi": items(custom.list_namespaced_custom_object, CHI_GROUP, CHI_VERSION, namespace,
                     "clickhouseinstallations"),
        "chk": items(custom.list_namespaced_custom_object, CHK_GROUP, CHI_VERSION, namespace,
                     "clickhousekeeperinstallations"),
    }


def _reader_calls(reader: Any, namespace: str) -> _Calls:
    ns = f"namespaces/{namespace}"
    paths: dict[str, tuple[str, dict[str, str]]] = {
        "records": (f"/api/v1/{ns}/secrets", {"labelSelector": "owner=helm"}),
        "deployments": (f"/apis/apps/v1/{ns}/deployments", {}),
        "statefulsets": (f"/apis/apps/v1/{ns}/statefulsets", {}),
        "events": (f"/api/v1/{ns}/events", {"fieldSelector": "type=Warning"}),
        "ingresses": (f"/apis/networking.k8s.io/v1/{ns}/ingresses", {}),
        "chi": (f"/apis/{CHI_GROUP}/{CHI_VERSION}/{ns}/clickhouseinstallations", {}),
        "chk": (f"/apis/{CHK_GROUP}/{CHI_VERSION}/{ns}/clickhousekeeperinstallations", {}),
    }
    def items(path: str, query: dict[str, str]) -> Callable[[], list[dict[str, Any]]]:
        return lambda: reader.items(path, **query)

    return {name: items(path, query) for name, (path, query) in paths.items()}


def _releases(records: list[dict[str, Any]]) -> dict[str, ReleaseStatus]:
    """The latest revision of each release, its chart read from Helm's record of that revision only."""
    from hfwizard.engine.workloads import decode_record

    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for rec in records:
        labels = rec["metadata"].get("labels") or {}
        name, version = labels.get("name"), str(labels.get("version", ""))
        if not name or not version.isdigit():
            continue
        if name not in latest or int(version) > latest[name][0]:
            latest[name] = (int(version), rec)
    out: dict[str, ReleaseStatus] = {}
    for name, (revision, rec) in latest.items():
        status = ReleaseStatus(name, revision=revision, helm_status=str(rec["metadata"]["labels"].get("status", "")))
        entry = (rec.get("data") or {}).get("release")
        if entry:
            meta = ((decode_record(entry).get("chart") or {}).get("metadata")) or {}
            status.chart, status.chart_version = str(meta.get("name", "")), str(meta.get("version", ""))
        out[name] = status
    return out


def _add_workloads(releases: dict[str, ReleaseStatus], workloads: list[dict[str, Any]],
                   events: list[dict[str, Any]]) -> None:
    by_prefix: list[tuple[str, ReleaseStatus]] = []
    for obj in workloads:
        meta = obj["metadata"]
        owner = (meta.get("annotations") or {}).get(RELEASE_ANNOTATION)
        rel = releases.get(owner or "")
        if rel is None:
            continue
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        replicas = spec.get("replicas")
        rel.desired += 1 if replicas is None else int(replicas)  # the API's default when unset
        rel.ready += int(status.get("readyReplicas") or 0)
        for c in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []:
            if c.get("image") and c["image"] not in rel.images:
                rel.images.append(c["image"])
        by_prefix.append((meta["name"], rel))
    for event in sorted(events, key=_event_time):
        involved = str((event.get("involvedObject") or {}).get("name", ""))
        for prefix, rel in by_prefix:
            if involved == prefix or involved.startswith(prefix + "-"):
                rel.last_warning = f"{event.get('reason', '')}: {str(event.get('message', '')).strip()}"[:300]
                break


def _event_time(event: dict[str, Any]) -> str:
    meta = event.get("metadata") or {}
    return str(event.get("lastTimestamp") or event.get("eventTime") or meta.get("creationTimestamp") or "")


def _ingress(ingresses: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    hosts: dict[str, None] = {}
    lb: list[str] = []
    for ing in sorted(ingresses, key=lambda i: i["metadata"]["name"]):
        for rule in (ing.get("spec") or {}).get("rules") or []:
            if rule.get("host"):
                hosts.setdefault(str(rule["host"]))
        lb = lb or lb_from_ingress(ing)
    return list(hosts), lb


def _clickhouse_line(obj: dict[str, Any]) -> str:
    from hfwizard.platform.clickhouse_status import readiness

    ready, summary = readiness(obj)
    return f"{'ready' if ready else 'not ready'}; {summary}"


def _reason(exc: BaseException) -> str:
    from hfwizard.engine.context import api_reason

    return api_reason(exc).splitlines()[0][:200]
