"""Shared by the platform tests: where Highflame's real charts and templates are, a loopback chart server, and
profiles for each cloud whose secrets are canaries."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hfwizard.profile import InstallProfile
from hfwizard.profile_io import load_profile

ROOT = Path(__file__).resolve().parents[1]


def _highflame_dir() -> Path:
    """`shared/highflame` beside the checkout (or above a worktree); $HFWIZARD_HIGHFLAME_DIR wins."""
    if os.environ.get("HFWIZARD_HIGHFLAME_DIR"):
        return Path(os.environ["HFWIZARD_HIGHFLAME_DIR"])
    for up in ROOT.parents:
        if (up / "shared/highflame").is_dir():
            return up / "shared/highflame"
    return ROOT.parent / "shared/highflame"


HIGHFLAME = _highflame_dir()
CHARTS = HIGHFLAME / "charts"
IAC = HIGHFLAME / "iac/helm-values"
CHARTS_MISSING = f"Highflame's chart repository copy is not here ({CHARTS}); set HFWIZARD_HIGHFLAME_DIR"
IAC_MISSING = f"Highflame's values templates are not here ({IAC}); set HFWIZARD_HIGHFLAME_DIR"

CANARIES = {
    "HF_CANARY_PG": "Canary-pg-7f3e91",
    "HF_CANARY_REDIS": "Canary/redis@pw#42",
    "HF_CANARY_CLERK": "sk_test_Canary-clerk-55aa",
    "HF_CANARY_GHCR": "ghp_Canary-ghcr-0c0c",
    "HF_CANARY_MODEL": "sk-Canary-model-9911",
    "HF_CANARY_MODELS": "Canary-models-secret-31",
    "HF_CANARY_HF": "hf_Canary-token-77",
}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve `folder` over HTTP on loopback; yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def cloud_profile(cloud: str, **update: Any) -> InstallProfile:
    """The example profile of `cloud` (aws, gcp, azure, existing, sandbox) with every secret a canary env ref."""
    data = load_profile(ROOT / "profiles" / f"{cloud}.yaml").profile.model_dump(by_alias=True, exclude_none=True)
    data["postgres"]["password"] = "env:HF_CANARY_PG"
    data["postgres"]["host"] = data["postgres"].get("host") or "pg.example.internal"
    data["redis"]["password"] = "env:HF_CANARY_REDIS"
    data["redis"]["endpoints"] = data["redis"].get("endpoints") or ["redis.example.internal:6379"]
    data["clerk"]["secretKey"] = "env:HF_CANARY_CLERK"
    data["images"]["pullSecret"] = "env:HF_CANARY_GHCR"
    data["platform"]["modelApiKeys"] = {}
    data["platform"].setdefault("model", {})["apiKey"] = "env:HF_CANARY_MODEL"
    data["platform"]["model"]["hfToken"] = "env:HF_CANARY_HF"
    data["platform"]["modelsSecret"] = "env:HF_CANARY_MODELS"
    for key, value in update.items():
        node = data
        *path, last = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return InstallProfile.model_validate(data)
