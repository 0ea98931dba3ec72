"""`hfwizard render` writes values with secrets as references only: canaries behind every reference kind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CANARIES = {
    "env": "CANARY-env-7f3a9c",
    "file": "CANARY-file-51be02",
    "keyring": "CANARY-keyring-c0ffee",
}

KEYRING_BACKEND = '''
from keyring.backend import KeyringBackend
class CanaryKeyring(KeyringBackend):
    """A keyring of the test's own that holds one canary (this machine has no keyring service)."""
    priority = 1
    def get_password(self, service, username):
        return "{value}" if (service, username) == ("hfwizard", "clerk") else None
    def set_password(self, service, username, password):
        raise NotImplementedError
    def delete_password(self, service, username):
        raise NotImplementedError
'''


@pytest.fixture
def canary_profile(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    (tmp_path / "pg-password").write_text(CANARIES["file"] + "\n")
    (tmp_path / "canary_keyring.py").write_text(KEYRING_BACKEND.format(value=CANARIES["keyring"]))
    profile = tmp_path / "canary.yaml"
    profile.write_text(f"""\
apiVersion: hfwizard/v1
kind: InstallProfile
target: {{cloud: existing, namespace: hf}}
postgres: {{host: db.example.com, password: "file:{tmp_path / 'pg-password'}"}}
redis: {{endpoints: ["r1.example.com:6379"], password: "env:HFW_CANARY_REDIS"}}
clerk:
  publishableKey: pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA
  secretKey: keyring:hfwizard/clerk
images: {{pullSecret: "k8s:ghcr-pull/token"}}
platform:
  modelApiKeys: {{openai: "env:HFW_CANARY_REDIS"}}
clickhouse:
  backup: {{bucket: hf-backups, accessKeyId: "env:HFW_CANARY_REDIS", credentials: "file:{tmp_path / 'pg-password'}"}}
ingress:
  domain: hf.example.com
  tls: {{certificate: "file:{tmp_path / 'pg-password'}", privateKey: "keyring:hfwizard/clerk"}}
""")
    env = {
        "HFW_CANARY_REDIS": CANARIES["env"],
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "PYTHON_KEYRING_BACKEND": "canary_keyring.CanaryKeyring",
    }
    return profile, env


def _all_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_canary_secrets_appear_in_no_file_and_no_output(canary_profile: tuple[Path, dict[str, str]],
                                                        tmp_path: Path) -> None:
    profile, env = canary_profile
    out = tmp_path / "rendered"
    r = subprocess.run([sys.executable, "-m", "hfwizard", "render", "--profile", str(profile), "--out", str(out)],
                       capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    written = _all_text(out)
    # The references are there, so the test would notice values being swapped in for them...
    assert "env:HFW_CANARY_REDIS" in written and "keyring:hfwizard/clerk" in written
    assert "existingSecret: ghcr-pull" not in written  # pull secret named by reference, see below
    assert "ghcr-pull" in written
    for kind, canary in CANARIES.items():
        assert canary not in written, f"{kind} canary leaked into a rendered file"
        assert canary not in r.stdout + r.stderr, f"{kind} canary leaked into output"
    for p in out.iterdir():
        assert p.stat().st_mode & 0o777 == 0o600


def test_the_canaries_do_resolve(canary_profile: tuple[Path, dict[str, str]]) -> None:
    """Proof the test above can fail: the same references really lead to the canaries."""
    profile, env = canary_profile
    code = ("from hfwizard.profile_io import load_profile; from hfwizard.secrets import resolve;"
            "import sys; p = load_profile(sys.argv[1]).profile;"
            "print(resolve(p.postgres.password).reveal(), resolve(p.redis.password).reveal(),"
            " resolve(p.clerk.secret_key).reveal())")
    r = subprocess.run([sys.executable, "-c", code, str(profile)], capture_output=True, text=True,
                       env={**os.environ, **env}, cwd=ROOT, timeout=60)
    assert r.stdout.split() == [CANARIES["file"], CANARIES["env"], CANARIES["keyring"]], r.stderr
