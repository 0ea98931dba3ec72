"""Outbound from inside the cluster: a short-lived pod curls the registry and Clerk; one check per host.

The outbound/* checks prove this machine's way out; the platform's pods and nodes have their own (NAT
gateway, egress firewall, NetworkPolicies, a node proxy). Only a pod can prove that, so when the
operator allows it one pod is started in the install's namespace (or `default` when that does not
exist yet): one curl container per host, restartPolicy Never, a deadline, deleted afterwards in every
case (also on a timeout or Ctrl-C: an atexit handler deletes what is left). Its image comes through the
profile's registry mirror when one is set, so pulling it also proves the nodes can pull from there.
Each container's exit code and termination message (curl's HTTP status and error) is the verdict.
"""

from __future__ import annotations

import asyncio
import atexit
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.checks.kubernetes import KubeSession, KubeTarget, KubeUnavailable
from hfwizard.checks.outbound import Destination

PROBE_IMAGE = "curlimages/curl:8.11.1"  # small (about 12 MB), runs as a non-root user, curl >= 8.3
PROBE_LABEL = "hfwizard.io/probe"
CHECK_PREFIX = "outbound/cluster-"
NOT_ALLOWED = ("not checked from inside the cluster: that starts a short-lived pod in the install's namespace; "
               "allow it with --cluster-outbound or preflight.clusterOutbound: true")
MIN_TIMEOUT = 60.0  # a pod is scheduled and its image pulled before anything is tried
_PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
# curl exit codes by the stage that failed, and what to do about it from the cluster's side.
_CURL_STAGES: dict[int, tuple[str, str]] = {
    5: ("proxy", "the pod's proxy host does not resolve: check HTTPS_PROXY as the platform's pods get it"),
    6: ("dns", "the cluster's DNS (CoreDNS and its upstream) cannot resolve it: check the VPC resolver or "
               "CoreDNS forwarding"),
    7: ("tcp", "nothing answers from inside the cluster: allow outbound 443 from the nodes and pods (NAT "
               "gateway, egress firewall, security groups, NetworkPolicies in the namespace)"),
    28: ("timeout", "the connection is dropped on the way out: allow outbound 443 from the nodes and pods "
                    "(NAT gateway, egress firewall, security groups, NetworkPolicies in the namespace)"),
    35: ("tls", "the TLS handshake failed: a TLS-inspecting firewall on the cluster's way out?"),
    60: ("tls", "the certificate is not trusted inside the pod: a TLS-inspecting firewall re-signs the traffic; "
                "add its CA to the nodes' and the platform's trust"),
    52: ("http", "the connection opened but no HTTP answer came: check the egress proxy or firewall"),
    56: ("http", "the connection broke while reading the answer: check the egress proxy or firewall"),
}


@dataclass(frozen=True)
class ProbeOutcome:
    """What the probe pod showed: per container (host) its exit code and message, or why nothing ran."""

    namespace: str
    pod: str
    node: str | None = None
    ended: dict[str, tuple[int, str]] = field(default_factory=dict)  # container -> (exit code, message)
    problem: str | None = None  # the pod never ran its containers: why
    remedy: str | None = None


@dataclass
class _Probe:
    """The one pod every cluster-outbound check reads; started by the first check that runs."""

    session: KubeSession
    destinations: Sequence[Destination]
    image: str
    timeout: float
    _task: asyncio.Future[ProbeOutcome] | None = None

    def outcome(self) -> asyncio.Future[ProbeOutcome]:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        return self._task

    async def _run(self) -> ProbeOutcome:
        started = time.monotonic()
        namespace = await self._namespace()
        name = f"hfwizard-egress-{secrets.token_hex(3)}"
        body = probe_pod(name, self.image, self.destinations, self.timeout)
        # Registered before it exists: a cancel between the create and the wait must not lose it.
        _PENDING[(namespace, name)] = await self.session.client()
        try:
            await self.session.call("CoreV1Api", "create_namespaced_pod", namespace, body)
        except KubeUnavailable:
            raise
        except Exception as exc:
            _PENDING.pop((namespace, name), None)
            return ProbeOutcome(namespace, name, problem=f"the probe pod was not created: {_api_error(exc)}",
                                remedy="let the installer create and delete pods in the namespace, or leave "
                                       "preflight.clusterOutbound off")
        try:
            return await self._wait(namespace, name, started + self.timeout * 0.8)
        finally:
            # Shielded: a check's timeout or Ctrl-C must not leave the pod behind.
            await asyncio.shield(self._delete(namespace, name))

    async def _namespace(self) -> str:
        wanted = self.session.target.namespace
        try:
            await self.session.call("CoreV1Api", "read_namespace", wanted)
        except KubeUnavailable:
            raise
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return "default"  # the install creates it later; preflight changes nothing of the install
            # Not allowed to read namespaces (403) or another answer: try the install's own; creating the
            # pod there says what is wrong, if anything.
        return wanted

    async def _wait(self, namespace: str, name: str, deadline: float) -> ProbeOutcome:
        pause = 0.2
        while True:
            pod = await self.session.call("CoreV1Api", "read_namespaced_pod", name, namespace)
            seen = read_pod(namespace, pod)
            if seen.problem is not None or len(seen.ended) == len(self.destinations):
                return seen
            if time.monotonic() + pause > deadline:
                return _unfinished(namespace, pod, seen, self.timeout)
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 1.0)

    async def _delete(self, namespace: str, name: str) -> None:
        try:
            await self.session.call("CoreV1Api", "delete_namespaced_pod", name, namespace, grace_period_seconds=0)
        except Exception:
            return  # left in _PENDING: the atexit handler tries once more
        _PENDING.pop((namespace, name), None)


def probe_pod(name: str, image: str, destinations: Sequence[Destination], timeout: float) -> dict[str, Any]:
    """The probe pod: one curl container per destination, each writing `<http code> <error>` as its
    termination message, bounded by curl's --max-time and the pod's activeDeadlineSeconds."""
    max_time = f"{max(2.0, min(10.0, timeout * 0.4)):g}"
    containers = [{
        "name": container_name(dest),
        "image": image,
        "command": ["curl"],
        "args": ["-sS", "-o", "/dev/null", "--max-time", max_time,
                 "-w", "%output{/dev/termination-log}%{http_code} %{errormsg}", dest.url],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
    } for dest in destinations]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "hfwizard", PROBE_LABEL: "egress"}},
        "spec": {"restartPolicy": "Never", "activeDeadlineSeconds": math.ceil(timeout) + 5,
                 "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
                 "securityContext": {"runAsUser": 100, "runAsGroup": 101, "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": containers},
    }


def container_name(dest: Destination) -> str:
    return dest.check_id.removeprefix(CHECK_PREFIX)


def read_pod(namespace: str, pod: Any) -> ProbeOutcome:
    """The probe's outcome so far from a V1Pod: containers that ended, or a reason none will run."""
    spec, status = pod.spec, pod.status
    node = spec.node_name if spec else None
    ended: dict[str, tuple[int, str]] = {}
    for cs in (status.container_statuses if status else None) or []:
        state = cs.state
        if state and state.terminated:
            ended[cs.name] = (int(state.terminated.exit_code), (state.terminated.message or "").strip())
        elif state and state.waiting and state.waiting.reason in _PULL_FAILURES:
            return ProbeOutcome(namespace, pod.metadata.name, node, problem=(
                f"the nodes could not pull the probe image {cs.image} ({state.waiting.reason}: "
                f"{_short(state.waiting.message or '')})"),
                remedy="let the nodes pull from that registry (or its mirror, images.mirror), or set "
                       "preflight.probeImage to a copy of curlimages/curl the nodes can pull")
        elif state and state.waiting and state.waiting.reason == "CreateContainerConfigError":
            return ProbeOutcome(namespace, pod.metadata.name, node,
                                problem=f"the probe could not start: {_short(state.waiting.message or '')}")
    return ProbeOutcome(namespace, pod.metadata.name, node, ended)


def _unfinished(namespace: str, pod: Any, seen: ProbeOutcome, timeout: float) -> ProbeOutcome:
    if seen.node is None:
        why = next((c.message for c in (pod.status.conditions if pod.status else None) or []
                    if c.type == "PodScheduled" and c.status == "False" and c.message), None)
        return ProbeOutcome(namespace, seen.pod, problem=(
            f"the probe pod was not scheduled within {timeout * 0.8:.0f} s" + (f": {_short(why)}" if why else "")),
            remedy="free room on a node for a 10m CPU / 16Mi pod, or raise the check's timeout")
    if not seen.ended:
        return ProbeOutcome(namespace, seen.pod, seen.node, problem=(
            f"the probe pod did not run within {timeout * 0.8:.0f} s on node {seen.node} (image pull still going?)"),
            remedy="raise the check's timeout (--timeout), or pre-pull the probe image")
    return seen  # some hosts answered in time; the others are reported as not ending


def _short(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _api_error(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    if status == 403:
        return "forbidden (403): the kubeconfig's user may not create pods there"
    reason = getattr(exc, "reason", None) or type(exc).__name__
    body = getattr(exc, "body", None)
    message = ""
    if isinstance(body, (str, bytes)):
        import json

        try:
            message = str(json.loads(body).get("message") or "")
        except (ValueError, AttributeError):
            message = ""
    return f"{status or ''} {reason}{': ' + _short(message) if message else ''}".strip()


def judge(dest: Destination, outcome: ProbeOutcome, started: float, timeout: float,
          first: str | None = None) -> CheckResult:
    """One host's verdict from the probe's outcome; `first` names the check that reports a probe that
    never ran (None: this one)."""
    where = f"from a pod in namespace {outcome.namespace}" + (f" on node {outcome.node}" if outcome.node else "")
    details: dict[str, str | int | float | bool | None] = {"url": dest.url, "namespace": outcome.namespace,
                                                           "node": outcome.node}
    if outcome.problem is not None and first is None:
        return result(dest.check_id, dest.title, Status.FAIL, outcome.problem, outcome.remedy, started, **details)
    if outcome.problem is not None:
        # Nothing was tried: one failure says why, the other hosts are not called unreachable.
        return result(dest.check_id, dest.title, Status.SKIPPED, f"not checked: the probe pod did not run "
                      f"(see {first})", None, started, **details)
    got = outcome.ended.get(container_name(dest))
    if got is None:
        return result(dest.check_id, dest.title, Status.FAIL,
                      f"{dest.url}: no answer {where} within {timeout * 0.8:.0f} s",
                      _CURL_STAGES[28][1], started, **details)
    code, message = got
    http, _, error = message.partition(" ")
    if code != 0:
        stage, remedy = _CURL_STAGES.get(code, ("", "check the cluster's way out to this host (egress firewall, "
                                                    "NAT gateway, NetworkPolicies, proxy)"))
        said = error.strip() or message.removeprefix(f"curl: ({code}) ") or "no message"
        return result(dest.check_id, dest.title, Status.FAIL,
                      f"{dest.url} not reachable {where}: {_short(said)} (curl exit {code}"
                      f"{', ' + stage if stage else ''})", remedy, started, exit_code=code, **details)
    status = int(http) if http.isdigit() else 0
    if dest.alive is not None and not dest.alive(status):
        return result(dest.check_id, dest.title, Status.FAIL,
                      f"{dest.url} answered HTTP {status} {where}: not the {dest.what or 'expected'} answer",
                      "check what the cluster's egress proxy or firewall returns for it", started,
                      http_status=status, **details)
    return result(dest.check_id, dest.title, Status.PASS, f"{dest.url} answered HTTP {status} {where}", None,
                  started, http_status=status, **details)


def cluster_outbound_checks(target: KubeTarget, destinations: Sequence[Destination], *, image: str,
                            timeout_for: Callable[[str], float]) -> list[Check]:
    """One check per destination, all reading one probe pod (the first to run starts it)."""
    timeout = max(timeout_for(d.check_id) for d in destinations) if destinations else MIN_TIMEOUT
    probe = _Probe(KubeSession(target), destinations, image, timeout)

    def make(dest: Destination) -> Check:
        async def run() -> CheckResult:
            started = time.monotonic()
            try:
                outcome = await asyncio.shield(probe.outcome())
            except KubeUnavailable:
                return result(dest.check_id, dest.title, Status.SKIPPED,
                              "not checked: the Kubernetes API is not usable (see kubernetes/api)", None, started)
            owner = destinations[0].check_id
            return judge(dest, outcome, started, timeout, None if dest.check_id == owner else owner)
        return Check(dest.check_id, dest.title, run, timeout)

    return [make(d) for d in destinations]


def cluster_destination(dest: Destination) -> Destination:
    """The in-cluster twin of one of this machine's outbound destinations."""
    name = dest.check_id.removeprefix("outbound/")
    return Destination(f"{CHECK_PREFIX}{name}", f"{dest.title} from inside the cluster", dest.url, dest.alive,
                       dest.what)


# Probe pods created and not yet deleted, with the API client that made them: deleted at exit should
# a check's own deletion not have run (a timeout, Ctrl-C, the process leaving at once).
_PENDING: dict[tuple[str, str], Any] = {}


@atexit.register
def _delete_leftovers() -> None:
    if not _PENDING:
        return
    from kubernetes import client

    for (namespace, name), api_client in list(_PENDING.items()):
        try:
            client.CoreV1Api(api_client).delete_namespaced_pod(name, namespace, grace_period_seconds=0,
                                                               _request_timeout=(3, 3))
        except Exception:  # nobody is left to tell at exit; activeDeadlineSeconds ends the pod
            continue
        _PENDING.pop((namespace, name), None)
