"""Objects a fresh emulated cluster starts with: Nodes, a default StorageClass, namespaces."""

from __future__ import annotations

from collections.abc import Mapping

from hfwizard.sandbox.emulator.api import JSON, now

__all__ = [
    "CLOUDS",
    "SYSTEM_NAMESPACES",
    "default_objects",
    "ingress_class",
    "namespace",
    "node",
    "quantity_bytes",
    "storage_class",
]

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}

# The labels each cloud's node groups carry (and Highflame's own `kube/nodegroup`, which the real
# values select on), with an instance type and zone so topology-aware charts see what they would.
CLOUDS: dict[str, tuple[str | None, str, str, str]] = {
    # cloud: (node-group label, instance type, region, StorageClass provisioner)
    "eks": ("eks.amazonaws.com/nodegroup", "m6i.2xlarge", "us-east-1", "ebs.csi.aws.com"),
    "gke": ("cloud.google.com/gke-nodepool", "n2-standard-8", "us-central1", "pd.csi.storage.gke.io"),
    "aks": ("agentpool", "Standard_D8s_v5", "eastus", "disk.csi.azure.com"),
    "generic": (None, "sandbox-8x32", "local", "rancher.io/local-path"),
}


# The custom kinds each cloud's clusters serve out of the box (installed by GKE itself, or by the AWS
# Load Balancer Controller that EKS clusters run for ALB ingresses): (group, version, kind, plural, scope).
CLOUD_KINDS: dict[str, list[tuple[str, str, str, str, str]]] = {
    "gke": [
        ("cloud.google.com", "v1", "BackendConfig", "backendconfigs", "Namespaced"),
        ("networking.gke.io", "v1beta1", "FrontendConfig", "frontendconfigs", "Namespaced"),
        ("networking.gke.io", "v1", "ManagedCertificate", "managedcertificates", "Namespaced"),
    ],
    "eks": [
        ("elbv2.k8s.aws", "v1beta1", "TargetGroupBinding", "targetgroupbindings", "Namespaced"),
        ("elbv2.k8s.aws", "v1beta1", "IngressClassParams", "ingressclassparams", "Cluster"),
    ],
}


def crd(group: str, version: str, kind: str, plural: str, scope: str) -> JSON:
    """A CustomResourceDefinition whose schema keeps whatever the object says (its controller, not
    the API server, judges the contents)."""
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "scope": scope,
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


def group_labels(cloud: str, group: str, index: int) -> dict[str, str]:
    """The labels a node of node group `group` carries on `cloud`."""
    label, instance_type, region, _ = CLOUDS[cloud]
    labels = {
        "kube/nodegroup": group,
        "node.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": f"{region}-{'abc'[index % 3]}",
    }
    if label is not None:
        labels[label] = group
    if cloud == "aks":
        labels["kubernetes.azure.com/agentpool"] = group
    return labels


def default_objects(
    *,
    version: str,
    workers: int = 6,
    cpu: str = "8",
    memory: str = "32Gi",
    cloud: str = "generic",
    gpu_nodes: int = 0,
    ingress_classes: tuple[str, ...] = (),
) -> list[JSON]:
    """What a fresh cluster of `cloud` holds: `workers` general nodes, optional GPU nodes (tainted
    nvidia.com/gpu), a default StorageClass; IngressClasses only when asked (a real cluster has one
    only once an ingress controller is installed)."""
    if cloud not in CLOUDS:
        raise ValueError(f"unknown cloud {cloud!r}: one of {', '.join(CLOUDS)}")
    objects = [
        node(f"worker-{i + 1}", version=version, cpu=cpu, memory=memory, labels=group_labels(cloud, "general", i))
        for i in range(workers)
    ]
    objects += [
        node(
            f"gpu-{i + 1}",
            version=version,
            cpu=cpu,
            memory=memory,
            labels=group_labels(cloud, "gpu", i),
            taints=[dict(GPU_TAINT)],
            extended={"nvidia.com/gpu": "1"},
        )
        for i in range(gpu_nodes)
    ]
    objects.append(storage_class(provisioner=CLOUDS[cloud][3]))
    objects += [crd(*kind) for kind in CLOUD_KINDS.get(cloud, [])]
    objects += [ingress_class(name) for name in ingress_classes]
    return objects


def quantity_bytes(value: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * factor)
    return int(value)


def node(
    name: str,
    *,
    version: str,
    cpu: str = "8",
    memory: str = "32Gi",
    ready: bool = True,
    labels: Mapping[str, str] | None = None,
    allocatable_cpu: str | None = None,
    allocatable_memory: str | None = None,
    pods: str = "110",
    role: str = "worker",
    taints: list[JSON] | None = None,
    extended: Mapping[str, str] | None = None,
) -> JSON:
    """A Node as a kubelet registers it: capacity, allocatable, labels, a Ready condition, kubeletVersion."""
    node_labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        f"node-role.kubernetes.io/{role}": "",
        **(labels or {}),
    }
    if allocatable_memory is None:
        # kubelet reserves some memory: allocatable is a little below capacity, as on real nodes.
        allocatable_memory = f"{max(quantity_bytes(memory) - 512 * 2**20, 0) // 2**10}Ki"
    stamp = now()
    spec: JSON = {"podCIDR": "10.244.0.0/24"}
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": node_labels},
        "spec": spec,
        "status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": pods, **(extended or {})},
            "allocatable": {
                "cpu": allocatable_cpu or cpu,
                "memory": allocatable_memory,
                "pods": pods,
                **(extended or {}),
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
            "nodeInfo": {
                "kubeletVersion": version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "containerd://1.7.23",
                "osImage": "Sandbox Linux",
                "kernelVersion": "6.1.0",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
            "addresses": [{"type": "InternalIP", "address": "10.0.0.10"}, {"type": "Hostname", "address": name}],
        },
    }


def storage_class(name: str = "standard", *, default: bool = True, provisioner: str = "rancher.io/local-path") -> JSON:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "annotations": annotations},
        "provisioner": provisioner,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def ingress_class(name: str = "nginx", *, controller: str = "k8s.io/ingress-nginx", default: bool = False) -> JSON:
    annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"controller": controller},
    }


def namespace(name: str, labels: Mapping[str, str] | None = None) -> JSON:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels or {})}}
