"""The status command's plain API reader: which kubeconfigs it takes, and TLS with a CA and a client certificate."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from hfwizard.daytwo.kube_read import ApiError, KubeReader, reader_for


def _kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": cluster}], "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    return str(path)


@pytest.mark.parametrize("user", [
    {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws", "args": ["eks", "get-token"]}},
    {"auth-provider": {"name": "oidc"}},
    {"username": "admin", "password": "x"},
], ids=["exec", "auth-provider", "basic"])
def test_credentials_only_the_client_has_fall_back_to_it(tmp_path: Path, user: dict[str, Any]) -> None:
    assert reader_for(_kubeconfig(tmp_path / "kc", {"server": "https://k.example:6443"}, user), None) is None


def test_proxies_several_files_and_broken_configs_fall_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = _kubeconfig(tmp_path / "kc", {"server": "http://127.0.0.1:1"}, {"token": "t"})
    assert isinstance(reader_for(good, None), KubeReader)
    assert reader_for(good, "other-context") is None
    assert reader_for(_kubeconfig(tmp_path / "p", {"server": "https://k:1", "proxy-url": "http://p:3128"},
                                  {"token": "t"}), None) is None
    assert reader_for(_kubeconfig(tmp_path / "n", {"server": "https://k:1", "tls-server-name": "x"},
                                  {"token": "t"}), None) is None
    (tmp_path / "junk").write_text(": : :")
    assert reader_for(str(tmp_path / "junk"), None) is None
    assert reader_for(str(tmp_path / "absent"), None) is None
    monkeypatch.setenv("KUBECONFIG", f"{good}:{tmp_path / 'other'}")
    assert reader_for(None, None) is None
    monkeypatch.setenv("KUBECONFIG", good)
    assert isinstance(reader_for(None, None), KubeReader)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert reader_for(good, None) is None


@pytest.fixture
def mtls_server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An HTTPS API stand-in that wants a client certificate from the CA and answers one list."""
    import trustme

    ca = trustme.CA()
    server_cert, client_cert = ca.issue_cert("127.0.0.1"), ca.issue_cert("hfwizard-user")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(ctx)
    ca.configure_trust(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            ok = self.path.startswith("/api/v1/namespaces/hf/secrets")
            body = json.dumps({"items": [{"metadata": {"name": "a"}}]} if ok else {"message": "nope"}).encode()
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"https://127.0.0.1:{httpd.server_address[1]}", "ca": ca.cert_pem.bytes(),
               "cert": client_cert.cert_chain_pems[0].bytes(), "key": client_cert.private_key_pem.bytes(), "seen": seen}
    finally:
        httpd.shutdown()


def test_tls_with_ca_data_and_a_client_certificate(tmp_path: Path, mtls_server: dict[str, Any]) -> None:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    (tmp_path / "client.crt").write_bytes(mtls_server["cert"])
    cluster = {"server": mtls_server["url"], "certificate-authority-data": b64(mtls_server["ca"])}
    kc = _kubeconfig(tmp_path / "kc", cluster,
                     {"client-certificate": "client.crt", "client-key-data": b64(mtls_server["key"])})
    reader = reader_for(kc, None)
    assert reader is not None
    assert reader.items("/api/v1/namespaces/hf/secrets", labelSelector="owner=helm") == [{"metadata": {"name": "a"}}]
    assert mtls_server["seen"] == ["/api/v1/namespaces/hf/secrets?labelSelector=owner%3Dhelm"]
    with pytest.raises(ApiError) as info:
        reader.items("/apis/x/v1/namespaces/hf/things")
    assert info.value.status == 404 and "nope" in info.value.body
    # Without the client certificate the server refuses the handshake: nothing is read.
    bare = reader_for(_kubeconfig(tmp_path / "kc2", {"server": mtls_server["url"],
                                                     "certificate-authority-data": b64(mtls_server["ca"])},
                                  {"token": "t"}), None)
    assert bare is not None
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        bare.items("/api/v1/namespaces/hf/secrets")
