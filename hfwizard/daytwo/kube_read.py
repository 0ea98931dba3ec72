"""A read-only Kubernetes API reader for `status`: plain HTTP(S) with a kubeconfig's static credentials.

`hfwizard status NAME` reads seven lists. The kubernetes client costs 0.5-0.7 s of CPU to import (it
loads every API and model class), several times the rest of the command, so status reads through this
when the kubeconfig allows it: a cluster with a server and its CA (data or file, or
insecure-skip-tls-verify) and a user with a bearer token, a token file, or a client certificate and
key. Anything else returns None and status uses the kubernetes client as before: exec plugins (aws eks
get-token, gke-gcloud-auth-plugin, kubelogin), auth providers, basic auth, a proxy (proxy-url or the
HTTP(S)_PROXY the client honours), tls-server-name, or several files in $KUBECONFIG.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPSConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

_SUPPORTED_USER = {"token", "tokenFile", "client-certificate", "client-certificate-data", "client-key",
                   "client-key-data"}
_SUPPORTED_CLUSTER = {"server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify",
                      "extensions", "disable-compression"}
_PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


class ApiError(Exception):
    """An HTTP error answer, shaped like the kubernetes client's ApiException (status, reason, body)."""

    def __init__(self, status: int, reason: str, body: bytes) -> None:
        super().__init__(f"({status}) {reason}")
        self.status, self.reason, self.body = status, reason, body.decode("utf-8", "replace")


@dataclass
class KubeReader:
    """GETs list answers from one API server; safe to use from several threads (a connection per call)."""

    scheme: str
    host: str
    port: int
    prefix: str  # a path the server is mounted under, usually ""
    context: ssl.SSLContext | None
    headers: dict[str, str] = field(repr=False)  # holds the bearer token: never shown
    timeout: float = 10.0

    def items(self, path: str, **query: str) -> list[dict[str, Any]]:
        conn: HTTPConnection
        if self.scheme == "https":
            conn = HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        else:
            conn = HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", self.prefix + path + (f"?{urlencode(query)}" if query else ""), headers=self.headers)
            answer = conn.getresponse()
            data = answer.read()
        finally:
            conn.close()
        if answer.status >= 400:
            raise ApiError(answer.status, answer.reason, data)
        return list(json.loads(data).get("items") or [])


def reader_for(kubeconfig: str | None, context: str | None, timeout: float = 10.0) -> KubeReader | None:
    """A reader for the kubeconfig's context, or None when it needs what only the kubernetes client does."""
    if any(os.environ.get(name) for name in _PROXY_ENV):
        return None
    path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    if os.pathsep in path:
        return None  # several files are merged by rules the client owns
    try:
        config = _load(Path(path).expanduser())
        cluster, user = _context(config, context)
    except Exception:  # missing, unreadable, malformed: the client reports it in its own words
        return None
    if not cluster or not set(cluster) <= _SUPPORTED_CLUSTER or not set(user) <= _SUPPORTED_USER:
        return None
    base = Path(path).expanduser().parent
    parts = urlsplit(str(cluster.get("server", "")))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    headers = {"Accept": "application/json", "User-Agent": "hfwizard-status"}
    token = user.get("token") or (_read(base, user["tokenFile"]).strip() if user.get("tokenFile") else None)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        tls = _tls(cluster, user, base) if parts.scheme == "https" else None
    except (OSError, ValueError, ssl.SSLError):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return KubeReader(parts.scheme, parts.hostname, port, parts.path.rstrip("/"), tls, headers, timeout)


def _load(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML

    from hfwizard.files import read_bounded

    data = YAML(typ="safe").load(read_bounded(path, what="kubeconfig", limit=4 << 20).decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a mapping")
    return data


def _context(config: dict[str, Any], wanted: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    name = wanted or config["current-context"]
    ctx = _named(config, "contexts", name)["context"]
    cluster = _named(config, "clusters", ctx["cluster"])["cluster"]
    user = _named(config, "users", ctx["user"]).get("user") or {} if ctx.get("user") else {}
    return dict(cluster), dict(user)


def _named(config: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    found = [e for e in config.get(kind) or [] if isinstance(e, dict) and e.get("name") == name]
    if len(found) != 1:
        raise KeyError(name)
    return found[0]


def _read(base: Path, name: str) -> str:
    return (base / Path(name).expanduser()).read_text(encoding="utf-8")


def _tls(cluster: dict[str, Any], user: dict[str, Any], base: Path) -> ssl.SSLContext:
    if cluster.get("insecure-skip-tls-verify"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        context = ssl.create_default_context(cafile=str(base / Path(cluster["certificate-authority"]).expanduser()))
    else:
        context = ssl.create_default_context()
    cert = _pem(user, "client-certificate", base)
    key = _pem(user, "client-key", base)
    if cert and key:
        # load_cert_chain reads files only: the key goes to a private folder for the call, then is removed.
        with tempfile.TemporaryDirectory(prefix="hfwizard-tls-") as folder:
            cert_file, key_file = Path(folder) / "cert.pem", Path(folder) / "key.pem"
            for target, text in ((cert_file, cert), (key_file, key)):
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(text)
            context.load_cert_chain(cert_file, key_file)
    elif cert or key:
        raise ValueError("a client certificate needs its key")
    return context


def _pem(user: dict[str, Any], field_name: str, base: Path) -> str | None:
    if user.get(f"{field_name}-data"):
        return base64.b64decode(user[f"{field_name}-data"]).decode()
    if user.get(field_name):
        return _read(base, user[field_name])
    return None
