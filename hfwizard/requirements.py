"""The platform's requirements (the vendor's deployment page), written once: bounds, checks and help read them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Version:
    """A minimum `major.minor` version."""

    major: int
    minor: int

    @property
    def tuple(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @property
    def text(self) -> str:
        return f"{self.major}.{self.minor}"


KUBERNETES = Version(1, 32)
"""Lowest Kubernetes server version."""
WORKERS_MIN = 6
"""Ready worker nodes, at least."""
WORKER_CORES = (8, 16)
"""CPU cores per worker node (min, max)."""
WORKER_MEMORY_GIB = (16, 32)
"""Memory per worker node in GiB (min, max)."""

POSTGRES = Version(17, 2)
"""Lowest PostgreSQL server version."""
POSTGRES_VCPU_MIN = 4
POSTGRES_MEMORY_GIB_MIN = 8

REDIS = Version(7, 1)
"""Lowest Redis server version (a cluster)."""
REDIS_MEMORY_GIB_MIN = 4
"""Memory per Redis node in GiB, at least."""

HELM_CLI = Version(3, 8)
"""Lowest `helm` binary, when the operator chooses it over the embedded Helm."""


def span(bounds: tuple[int, int]) -> str:
    """(8, 16) -> "8–16", as the help texts write a range."""
    return f"{bounds[0]}–{bounds[1]}"
