"""Azure credentials found on this machine (service principal, Azure CLI, managed identity), and the HTTP pipeline."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

from hfwizard.cloud.azure_support import API, AZURE_SDK, AzureOptions, _auth_finding, _http_finding
from hfwizard.cloud.base import (
    Cloud,
    CloudError,
    Finding,
    FoundCredential,
    Sealed,
    home_relative,
    load_sdk,
)


class _AzureCredentials:
    """Credentials found on this machine, made azure-identity credentials, and the authenticated HTTP
    pipeline every call goes through (an AzureProvider part)."""

    options: AzureOptions

    def _config_dir(self) -> Path:
        return (
            self.options.config_dir or Path(os.environ.get("AZURE_CONFIG_DIR") or "~/.azure")
        ).expanduser()

    def discover_credentials(self) -> list[FoundCredential]:
        """Service-principal variables, the Azure CLI's subscriptions (read from its profile file, no `az`
        run), and a managed identity when the environment announces one. No network."""
        env = os.environ
        found: list[FoundCredential] = []
        tenant, client = env.get("AZURE_TENANT_ID"), env.get("AZURE_CLIENT_ID")
        auth = (
            "secret"
            if env.get("AZURE_CLIENT_SECRET")
            else "certificate"
            if env.get("AZURE_CLIENT_CERTIFICATE_PATH")
            else "federated-token"
            if env.get("AZURE_FEDERATED_TOKEN_FILE")
            else None
        )
        if tenant and client and auth:
            details = {"tenant_id": tenant, "client_id": client, "auth": auth}
            if env.get("AZURE_SUBSCRIPTION_ID"):
                details["subscription_id"] = env["AZURE_SUBSCRIPTION_ID"]
            found.append(
                FoundCredential(
                    Cloud.AZURE,
                    "azure-env",
                    f"service principal {client}",
                    "environment (AZURE_CLIENT_ID)",
                    None,
                    details,
                )
            )
        profile = self._config_dir() / "azureProfile.json"
        try:
            # The CLI writes this file with a byte-order mark.
            subs = json.loads(profile.read_text(encoding="utf-8-sig")).get("subscriptions") or []
        except (OSError, ValueError):
            subs = []
        for s in subs:
            user = s.get("user") or {}
            found.append(
                FoundCredential(
                    Cloud.AZURE,
                    "azure-cli",
                    s.get("name") or s.get("id", ""),
                    f"{home_relative(profile)} (az login)",
                    None,
                    {
                        "subscription_id": s.get("id", ""),
                        "tenant_id": s.get("tenantId", ""),
                        "user": user.get("name", ""),
                        "user_type": user.get("type", ""),
                        "default": str(bool(s.get("isDefault"))).lower(),
                        "state": s.get("state", ""),
                    },
                )
            )
        if env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"):
            details = {"client_id": client} if client and not auth else {}
            found.append(
                FoundCredential(
                    Cloud.AZURE,
                    "azure-managed-identity",
                    "managed identity",
                    "environment (IDENTITY_ENDPOINT)",
                    None,
                    details,
                )
            )
        return found

    def client_secret_credential(
        self,
        tenant_id: str,
        client_id: str,
        secret: str,
        *,
        subscription_id: str | None = None,
        source: str = "given secret",
    ) -> FoundCredential:
        """An "azure-client-secret" credential: a service principal whose secret is already in hand
        (resolved from the profile's reference of any kind), handed to azure-identity from memory."""
        details = {"tenant_id": tenant_id, "client_id": client_id, "auth": "secret"}
        if subscription_id:
            details["subscription_id"] = subscription_id
        return FoundCredential(
            Cloud.AZURE,
            "azure-client-secret",
            f"service principal {client_id}",
            source,
            None,
            details,
            Sealed(client_secret=secret),
        )

    def _transport(self) -> Any:
        load_sdk(*AZURE_SDK)
        from azure.core.pipeline.transport import RequestsTransport

        return RequestsTransport(
            connection_timeout=self.options.timeout_s,
            read_timeout=self.options.timeout_s,
            connection_verify=self.options.ca_bundle or True,
        )

    def _credential(self, credential: FoundCredential) -> Any:
        """An azure-identity credential; secrets are read from the environment here and handed over."""
        load_sdk(*AZURE_SDK)
        import azure.identity as ai

        kw: dict[str, Any] = {"transport": self._transport(), "retry_total": 1}
        if self.options.authority_host:
            kw["authority"] = self.options.authority_host
        disable = self.options.disable_instance_discovery
        if disable is None:
            disable = bool(self.options.authority_host)
        env = os.environ
        if credential.kind == "azure-client-secret":
            return ai.ClientSecretCredential(
                credential.details.get("tenant_id", ""),
                credential.details.get("client_id", ""),
                (credential.sealed or Sealed()).reveal("client_secret") or "",
                disable_instance_discovery=disable,
                **kw,
            )
        if credential.kind == "azure-env":
            tenant, client = env.get("AZURE_TENANT_ID", ""), env.get("AZURE_CLIENT_ID", "")
            if env.get("AZURE_CLIENT_SECRET"):
                return ai.ClientSecretCredential(
                    tenant, client, env["AZURE_CLIENT_SECRET"], disable_instance_discovery=disable, **kw
                )
            if env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
                return ai.CertificateCredential(
                    tenant,
                    client,
                    env["AZURE_CLIENT_CERTIFICATE_PATH"],
                    password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
                    disable_instance_discovery=disable,
                    **kw,
                )
            return ai.WorkloadIdentityCredential(
                tenant_id=tenant,
                client_id=client,
                token_file_path=env.get("AZURE_FEDERATED_TOKEN_FILE", ""),
                disable_instance_discovery=disable,
                **kw,
            )
        if credential.kind == "azure-cli":
            if not shutil.which("az"):
                raise CloudError(
                    Finding(
                        False,
                        "azure/cli-missing",
                        "the Azure CLI profile is here but the `az` command is not installed",
                        "install the Azure CLI, or use a service principal (AZURE_TENANT_ID, "
                        "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)",
                    )
                )
            return ai.AzureCliCredential(
                tenant_id=credential.details.get("tenant_id") or "",
                process_timeout=int(max(self.options.timeout_s, 10)),
            )
        if credential.kind == "azure-managed-identity":
            return ai.ManagedIdentityCredential(
                client_id=credential.details.get("client_id") or None, transport=self._transport()
            )
        raise CloudError(
            Finding(False, "azure/unknown-credential", f"unknown credential kind {credential.kind}")
        )

    def access_token(self, credential: FoundCredential, scope: str) -> tuple[str, dt.datetime]:
        """A bearer token for `scope` and its expiry (UTC); failures become CloudError findings."""
        try:
            tok = self._credential(credential).get_token(scope)
        except CloudError:
            raise
        except Exception as exc:
            raise CloudError(_auth_finding(exc, credential)) from None
        return tok.token, dt.datetime.fromtimestamp(tok.expires_on, dt.UTC)

    def _client(self, credential: FoundCredential, scope: str) -> Any:
        load_sdk(*AZURE_SDK)
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import BearerTokenCredentialPolicy, HeadersPolicy, RetryPolicy

        cred = self._credential(credential)
        return PipelineClient(
            self.options.management_endpoint,
            policies=[
                HeadersPolicy({"Accept": "application/json"}),
                RetryPolicy(retry_total=1),
                BearerTokenCredentialPolicy(cred, scope),
            ],
            transport=self._transport(),
        )

    def _send(
        self,
        client: Any,
        method: str,
        url: str,
        action: str,
        credential: FoundCredential,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> Any:
        load_sdk(*AZURE_SDK)
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
        from azure.core.rest import HttpRequest

        try:
            resp = client.send_request(HttpRequest(method, url, headers=headers, content=content))
        except ClientAuthenticationError as exc:
            raise CloudError(_auth_finding(exc, credential)) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            host = url.split("/")[2] if "://" in url else url
            raise CloudError(
                Finding(
                    False,
                    "azure/unreachable",
                    f"could not reach {host} ({type(exc).__name__})",
                    "check the network, VPN and HTTPS_PROXY",
                )
            ) from None
        if resp.status_code >= 400:
            raise CloudError(_http_finding(resp, action))
        return resp

    def _list(self, client: Any, url: str, action: str, credential: FoundCredential) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            body = self._send(client, "GET", next_url, action, credential).json()
            items.extend(body.get("value") or [])
            next_url = body.get("nextLink")
        return items

    def _mgmt(self, path: str, api: str) -> str:
        return f"{self.options.management_endpoint}{path}?api-version={API[api]}"

    def _subscription(self, credential: FoundCredential) -> str:
        sub = (
            credential.details.get("subscription_id")
            or self.options.subscription
            or os.environ.get("AZURE_SUBSCRIPTION_ID")
        )
        if sub:
            return sub
        client = self._client(credential, self._mgmt_scope())
        subs = self._list(
            client, self._mgmt("/subscriptions", "subscriptions"), "subscriptions/read", credential
        )
        enabled = [s for s in subs if s.get("state", "Enabled") == "Enabled"]
        if len(enabled) == 1:
            return str(enabled[0]["subscriptionId"])
        raise CloudError(
            Finding(
                False,
                "azure/no-subscription",
                f"{len(enabled)} subscriptions visible to {credential.name}; none chosen",
                "set AZURE_SUBSCRIPTION_ID, or choose a subscription",
            )
        )

    def _mgmt_scope(self) -> str:
        return f"{self.options.management_endpoint}/.default"
