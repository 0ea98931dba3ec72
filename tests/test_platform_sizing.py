"""What the platform asks of each node group, from the same values the releases get."""

from __future__ import annotations

import pytest

from hfwizard.platform.sizing import cpu_millis, memory_bytes, node_group_requests
from tests.platform_support import cloud_profile

GIB = 2**30


def test_quantities() -> None:
    assert (cpu_millis("3500m"), cpu_millis("2"), cpu_millis("0.5")) == (3500, 2000, 500)
    assert (memory_bytes("15Gi"), memory_bytes("1024Mi"), memory_bytes("1G")) == (15 * GIB, GIB, 10**9)
    with pytest.raises(ValueError, match="not a CPU quantity"):
        cpu_millis("lots")


def test_the_gpu_group_carries_the_three_guardrail_models() -> None:
    groups = {g.label: g for g in node_group_requests(cloud_profile("aws"))}
    gpu = groups["kube/nodegroup=gpu"]
    # guard, guard-cm, guard-deepcontext at the guardrails module's minimum (the aws example: medium preset, 3)
    assert gpu.pods == 9 and gpu.cpu_millis == 9 * 3500 and gpu.memory_bytes == 9 * 15 * GIB
    assert gpu.largest_cpu_millis == 3500 and gpu.largest_memory_bytes == 15 * GIB
    general = groups["kube/nodegroup=general"]
    assert general.largest_cpu_millis == 3500  # guard-pii runs on the general group
    assert general.pods > 30


def test_without_guardrails_there_is_no_gpu_group_and_overrides_count() -> None:
    off = cloud_profile("aws", **{"modules.guardrails.enabled": False})
    assert [g.label for g in node_group_requests(off)] == ["kube/nodegroup=general"]
    base = node_group_requests(off)[0]
    bigger = cloud_profile("aws", **{"modules.guardrails.enabled": False,
                                     "services": {"admin": {"values": {"autoscaling": {"minReplicas": 5}}}}})
    assert node_group_requests(bigger)[0].cpu_millis == base.cpu_millis + 3 * 200
