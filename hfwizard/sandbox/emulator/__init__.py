"""An emulated Kubernetes API server on loopback (kmock's KubernetesEmulator plus our own semantics).

Layers, each importing only those above it: api (errors, types) → protocol, selectors, patches →
catalogue → semantics → store → state, seeding → server → controllers (given the store) → cluster,
thread, cli (where the server and the controllers are assembled).
"""

from hfwizard.sandbox.emulator.api import JSON, ApiError, WatchEvent
from hfwizard.sandbox.emulator.cluster import EmulatedCluster
from hfwizard.sandbox.emulator.protocol import decode_protobuf
from hfwizard.sandbox.emulator.server import SandboxEmulator
from hfwizard.sandbox.emulator.store import Store
from hfwizard.sandbox.emulator.thread import ClusterThread

__all__ = [
    "JSON",
    "ApiError",
    "ClusterThread",
    "EmulatedCluster",
    "SandboxEmulator",
    "Store",
    "WatchEvent",
    "decode_protobuf",
]
