"""The support bundle from the command line: written on its own after a failed install (its path
printed), and by `hfwizard support-bundle NAME`; no planted secret readable in either archive.

The Kubernetes API is emulated (kmock plus our shim on loopback: no real API server runs on these
machines); the canaries sit behind every secret reference of the profile, in the Secrets the install
wrote and in Warning events. The module tests (test_daytwo_bundle.py) plant them in container logs
too, served by the emulator's pod log endpoint.
"""

from __future__ import annotations

import base64
import tarfile
from pathlib import Path

from tests.daytwo_support import assert_no_leak
from tests.engine_support import CANARIES, FILE_CANARY, emulated_cluster, events, hfwizard, write_profile
from tests.fixtures.servers import PgServer


def _archive_bytes(path: Path) -> dict[str, bytes]:
    out = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            if handle is not None:
                out[member.name] = handle.read()
    return out


def _no_canary(path: Path, generated: list[str]) -> dict[str, bytes]:
    members = _archive_bytes(path)
    assert members, f"{path} is empty"
    every = b"\n".join(members.values())
    assert_no_leak(every, [*CANARIES.values(), FILE_CANARY, *generated], str(path))
    # The gzip stream itself, too (a value must not survive in the compressed bytes either).
    assert_no_leak(path.read_bytes(), [*CANARIES.values(), FILE_CANARY], str(path) + " (compressed)")
    return members


def test_failed_install_writes_a_bundle_and_the_command_writes_one_too(tmp_path: Path, pg17: PgServer) -> None:
    """The platform's admin service never turns ready (held by the emulator's controllers): its release
    stalls, the install fails, and the bundle it writes holds no secret, generated ones included."""
    state = tmp_path / "state"
    with emulated_cluster(ready_delay=0.1) as cluster:
        assert cluster.controllers is not None
        cluster.controllers.hold("highflame-admin")
        kc = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        profile = write_profile(tmp_path, kc, stall=5, pg=pg17)
        failed = hfwizard("install", "--profile", str(profile), "--yes", "--json", "--skip-preflight",
                          state=state, cwd=tmp_path, timeout=180)
        assert failed.returncode == 1, failed.stderr + failed.stdout[-2000:]
        evs = events(failed.stdout)
        [note] = [e for e in evs if e["event"] == "log" and e["step_id"] == "support-bundle"]
        assert evs[-1]["event"] == "done", "the run's last event stays its end"
        auto = Path(note["line"].removeprefix("support bundle: ").split(" (")[0])
        assert auto.is_file(), note
        assert auto.parent == state / "installs" / "canary" / "support"

        from kubernetes import client, config

        api = config.new_client_from_config(str(kc), context="sandbox")
        core = client.CoreV1Api(api)
        generated = [base64.b64decode(v).decode() for s in core.list_namespaced_secret("highflame").items
                     if s.metadata.name == "highflame-platform-secrets" for v in (s.data or {}).values()]
        assert generated, "the install wrote its generated platform secrets"
        core.create_namespaced_event("highflame", {
            "metadata": {"name": "leaky.1"}, "type": "Warning", "reason": "Failed",
            "message": f"auth failed for {CANARIES['HFW_CANARY_PG']} / {generated[0]}",
            "involvedObject": {"kind": "Pod", "name": "highflame-admin-5d9c7-abcde", "namespace": "highflame"}})
        out = tmp_path / "asked.tar.gz"
        asked = hfwizard("support-bundle", "canary", "--out", str(out), state=state, cwd=tmp_path)
        assert asked.returncode == 0, asked.stderr
        assert asked.stdout.strip().startswith(f"support bundle: {out}")
    _no_canary(auto, generated)
    members = _no_canary(out, generated)
    events_member = next(v for k, v in members.items() if k.endswith("events.json"))
    assert b"leaky.1" in events_member or b"auth failed for" in events_member, "the event itself is collected"
    assert any(k.endswith("journal.jsonl") for k in members)


def test_support_bundle_of_an_unknown_install_is_bad_input(tmp_path: Path) -> None:
    done = hfwizard("support-bundle", "ghost", state=tmp_path / "state", cwd=tmp_path)
    assert done.returncode == 2 and "no install named 'ghost'" in done.stderr and "Traceback" not in done.stderr
