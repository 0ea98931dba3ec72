"""The API server's defaulting for the kinds the charts use, so objects read back as on a real cluster."""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from hfwizard.sandbox.emulator.api import JSON, ResourceType

__all__ = ["default_object", "load_balancer_status"]

_NODE_PORTS = range(30000, 32768)


def _pod_spec(spec: JSON) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1].partition(":")[2] if "@" not in image else "digest"
        container.setdefault("imagePullPolicy", "Always" if tag in ("", "latest") else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")


def _workload(kind: str, spec: JSON) -> None:
    template = spec.setdefault("template", {})
    _pod_spec(template.setdefault("spec", {}))
    if kind in ("Deployment", "StatefulSet"):
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
    if kind == "Deployment":
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy["type"] = "RollingUpdate"
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
    elif kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    elif kind == "Job":
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        template["spec"]["restartPolicy"] = template["spec"].get("restartPolicy") or "OnFailure"


def _service(spec: JSON, taken: Collection[int]) -> None:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    needs_node_port = spec["type"] in ("NodePort", "LoadBalancer")
    if needs_node_port:
        spec.setdefault("externalTrafficPolicy", "Cluster")
    free = (p for p in _NODE_PORTS if p not in set(taken))
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if needs_node_port and not port.get("nodePort"):
            port["nodePort"] = next(free)


def default_object(info: ResourceType, obj: JSON, taken_node_ports: Collection[int] = ()) -> None:
    """Fill in the defaults a real API server sets for `obj` (create and update alike)."""
    if info.group == "apps" or (info.group == "batch" and info.kind == "Job"):
        _workload(info.kind, obj.setdefault("spec", {}))
    elif info.group == "batch" and info.kind == "CronJob":
        spec = obj.setdefault("spec", {})
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        _workload("Job", spec.setdefault("jobTemplate", {}).setdefault("spec", {}))
    elif not info.group and info.kind == "Service":
        _service(obj.setdefault("spec", {}), taken_node_ports)
    elif info.group == "autoscaling" and info.kind == "HorizontalPodAutoscaler":
        obj.setdefault("spec", {}).setdefault("minReplicas", 1)


def load_balancer_status(service: JSON, cloud: str) -> JSON:
    """The address a cloud's load-balancer controller gives a LoadBalancer Service: a hostname on
    EKS (an ELB name), an IP elsewhere."""
    meta = service["metadata"]
    digest = hashlib.sha256(f"{meta.get('namespace')}/{meta['name']}".encode()).hexdigest()
    if cloud == "eks":
        return {"ingress": [{"hostname": f"a{digest[:24]}-{int(digest[24:32], 16) % 10**9}"
                                         ".us-east-1.elb.amazonaws.com"}]}
    return {"ingress": [{"ip": f"203.0.113.{int(digest[:2], 16) % 250 + 1}", "ipMode": "VIP"}]}
