"""The platform's requirements live in hfwizard.requirements; the profile's bounds, the checks, the cluster
verdict and the screens' help all read them there, so changing one number changes every place."""

from __future__ import annotations

from hfwizard import requirements as req
from hfwizard.checks import kubernetes, postgres, redis
from hfwizard.cloud.base import Cloud, ClusterInfo, NodePool
from hfwizard.draft import field_range
from hfwizard.operations import cluster_fit
from hfwizard.profile import InstallProfile


def test_profile_bounds_are_the_requirements() -> None:
    assert field_range("sizing.nodes.count")[0] == req.WORKERS_MIN
    assert field_range("sizing.nodes.cores") == tuple(map(float, req.WORKER_CORES))
    assert field_range("sizing.nodes.memoryGiB") == tuple(map(float, req.WORKER_MEMORY_GIB))
    assert field_range("sizing.redis.memoryGiBPerNode")[0] == req.REDIS_MEMORY_GIB_MIN
    assert field_range("sizing.postgres.vcpu")[0] == req.POSTGRES_VCPU_MIN
    assert field_range("sizing.postgres.memoryGiB")[0] == req.POSTGRES_MEMORY_GIB_MIN
    p = InstallProfile()
    assert (p.postgres.min_version, p.redis.min_version) == (req.POSTGRES.text, req.REDIS.text)


def test_checks_use_the_requirements() -> None:
    assert req.KUBERNETES.tuple == kubernetes.MIN_VERSION and kubernetes.MIN_WORKERS == req.WORKERS_MIN
    assert (kubernetes.CORES, kubernetes.MEMORY_GIB) == (req.WORKER_CORES, req.WORKER_MEMORY_GIB)
    assert postgres.PostgresSpec.__dataclass_fields__["min_version"].default == req.POSTGRES.text
    assert redis.RedisSpec.__dataclass_fields__["min_version"].default == req.REDIS.text


def test_cluster_verdict_and_help_read_the_requirements() -> None:
    lo, hi = req.WORKER_CORES
    fits = ClusterInfo(Cloud.AWS, "ok", "eu-west-1", f"{req.KUBERNETES.text}.3", None, None,
                       (NodePool("p", "m7i.2xlarge", lo, float(req.WORKER_MEMORY_GIB[0]), req.WORKERS_MIN),))
    fit = cluster_fit(fits)
    assert (fit.version, fit.nodes, fit.sizes) == (True, True, True)
    small = ClusterInfo(Cloud.AWS, "small", "eu-west-1", f"1.{req.KUBERNETES.minor - 1}", None, None,
                        (NodePool("p", "m7i.xlarge", lo - 1, 8.0, req.WORKERS_MIN - 1),))
    fit = cluster_fit(small)
    assert (fit.version, fit.nodes, fit.sizes) == (False, False, False)
    from hfwizard.screens.cluster_screen import ClusterScreen
    from hfwizard.screens.sizing_screen import SizingScreen

    assert f"Kubernetes **{req.KUBERNETES.text} or newer**" in ClusterScreen.HELP
    assert f"**{lo}–{hi} cores**" in ClusterScreen.HELP and f"at least **{req.WORKERS_MIN}**" in SizingScreen.HELP
