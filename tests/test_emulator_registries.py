"""The emulated nodes reach the operator's own registry (a mirror) for real: a name that does not resolve or a
port that refuses fails the pull in containerd's words; a registry that answers pulls as before."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, cast

from hfwizard.profile import InstallProfile
from hfwizard.sandbox.emulator.controllers import kubelet
from hfwizard.sandbox.rehearsal import emulator_seed, operator_registries, sandbox_profile


def _spec(image: str) -> dict[str, Any]:
    return {"containers": [{"name": "app", "image": image}]}


def test_a_registry_that_does_not_resolve_or_refuses_fails_and_one_that_answers_does_not() -> None:
    assert kubelet.reach("registry.corp.invalid:5000") == "dial tcp: lookup registry.corp.invalid: no such host"
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed again below: nothing listens there
    assert kubelet.reach(f"127.0.0.1:{port}") == f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert kubelet.reach(f"127.0.0.1:{server.getsockname()[1]}") is None


def test_a_pull_from_an_unreachable_registry_says_why() -> None:
    store = cast(Any, None)  # an image check reads nothing from the store
    causes = kubelet.unreachable_causes({"mirror.local:5000": "dial tcp 10.0.0.9:5000: i/o timeout"})
    problem = kubelet.check(store, "ns", _spec("mirror.local:5000/hf/admin:1"), causes)
    assert problem is not None
    reason, message, event, _ = problem
    assert (reason, event) == ("ErrImagePull", "Failed")
    assert message.endswith("dial tcp 10.0.0.9:5000: i/o timeout") and "mirror.local:5000/hf/admin:1" in message
    assert kubelet.check(store, "ns", _spec("ghcr.io/hf/admin:1"), causes) is None
    # Names alone (the steering flag) give the lookup failure.
    named = kubelet.unreachable_causes(["ghcr.io"])
    assert named == {"ghcr.io": "dial tcp: lookup ghcr.io: no such host"}


def test_a_rehearsal_has_the_nodes_try_the_profiles_own_registries(tmp_path: Path) -> None:
    profile = sandbox_profile(tmp_path)
    profile.images.mirror = "mirror.corp.example:5000/ghcr"
    profile.clickhouse.image_registry = "hub.corp.example"
    assert operator_registries(profile) == ["mirror.corp.example:5000", "hub.corp.example"]
    args = emulator_seed(profile)
    assert args[args.index("--operator-registry") + 1] == "mirror.corp.example:5000"
    assert operator_registries(InstallProfile()) == []
