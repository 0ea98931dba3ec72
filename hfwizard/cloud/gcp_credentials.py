"""Google Cloud credentials: found on this machine (key files, gcloud's ADC, its configuration), loaded, refreshed."""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from hfwizard.cloud.base import (
    Cloud,
    CloudError,
    Finding,
    FoundCredential,
    home_relative,
    load_sdk,
    mask,
)
from hfwizard.cloud.gcp_support import GCP_SDK, SCOPES, GcpOptions, _refresh_finding, log


class _GcpCredentials:
    """Credentials found on this machine, loaded into google-auth and refreshed (a GcpProvider part)."""

    options: GcpOptions

    def _gcloud_dir(self) -> Path:
        return (
            self.options.cloudsdk_config or Path(os.environ.get("CLOUDSDK_CONFIG") or "~/.config/gcloud")
        ).expanduser()

    def discover_credentials(self) -> list[FoundCredential]:
        """GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file and gcloud's active configuration.

        Reads files only: the metadata server is never probed here (off GCE it only costs a timeout).
        """
        found: list[FoundCredential] = []
        gcloud_config = self._gcloud_config()
        env_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if env_file:
            cred = self.credential_from_file(Path(env_file), "environment (GOOGLE_APPLICATION_CREDENTIALS)")
            if cred:
                found.append(cred)
        adc = self._gcloud_dir() / "application_default_credentials.json"
        if adc.is_file() and (not env_file or Path(env_file).expanduser().resolve() != adc.resolve()):
            cred = self.credential_from_file(adc, home_relative(adc))
            if cred:
                found.append(cred)
        if gcloud_config:
            name, values, path = gcloud_config
            details = {k: v for k, v in values.items() if k in ("project", "account", "region", "zone")}
            details["configuration"] = name
            if adc.is_file():
                details["file"] = str(adc)
            found.append(
                FoundCredential(
                    Cloud.GCP,
                    "gcp-gcloud-config",
                    name,
                    f"{home_relative(path)} [core]",
                    values.get("region"),
                    details,
                )
            )
        return found

    def credential_from_file(self, path: Path, source: str | None = None) -> FoundCredential | None:
        """A FoundCredential for a key or ADC file the operator names; None if it is not one."""
        path = path.expanduser()
        try:
            info = json.loads(_read_key(path))
        except (OSError, ValueError) as exc:
            log.warning("could not read %s: %s", home_relative(path), type(exc).__name__)
            return None
        if not isinstance(info, dict):
            return None
        kind_of = info.get("type")
        details: dict[str, str] = {"file": str(path), "type": str(kind_of)}
        project = info.get("project_id") or info.get("quota_project_id")
        gcloud = self._gcloud_config()
        if not project and gcloud:
            project = gcloud[1].get("project")
        if project:
            details["project"] = project
        if kind_of == "service_account":
            details["client_email"] = info.get("client_email", "")
            details["private_key_id"] = mask(info.get("private_key_id", ""))
            return FoundCredential(
                Cloud.GCP,
                "gcp-service-account",
                info.get("client_email", path.name),
                source or home_relative(path),
                None,
                details,
            )
        if kind_of in (
            "authorized_user",
            "external_account",
            "impersonated_service_account",
            "external_account_authorized_user",
        ):
            if gcloud and gcloud[1].get("account"):
                details["account"] = gcloud[1]["account"]
            return FoundCredential(
                Cloud.GCP,
                "gcp-adc",
                details.get("account", "application default"),
                source or home_relative(path),
                None,
                details,
            )
        return None

    def _gcloud_config(self) -> tuple[str, dict[str, str], Path] | None:
        root = self._gcloud_dir()
        try:
            active = (root / "active_config").read_text().strip() or "default"
        except OSError:
            active = "default"
        path = root / "configurations" / f"config_{active}"
        if not path.is_file():
            return None
        parser = configparser.RawConfigParser(strict=False)
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error:
            return None
        values: dict[str, str] = {}
        for section, keys in (("core", ("project", "account")), ("compute", ("region", "zone"))):
            for key in keys:
                if parser.has_option(section, key):
                    values[key] = parser.get(section, key)
        return active, values, path

    def _credential_file(self, credential: FoundCredential | None) -> Path:
        if credential and credential.details.get("file"):
            return Path(credential.details["file"])
        if credential and credential.kind == "gcp-gcloud-config":
            raise CloudError(
                Finding(
                    False,
                    "gcp/no-adc",
                    f"gcloud is configured ({credential.name}) but has no Application Default Credentials",
                    "run: gcloud auth application-default login",
                )
            )
        env = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        return Path(env) if env else self._gcloud_dir() / "application_default_credentials.json"

    def _load(self, path: Path) -> Any:
        """google-auth credentials from a file. The secret stays inside google-auth's object."""
        load_sdk(*GCP_SDK)
        import google.auth
        from google.oauth2 import credentials as user_credentials
        from google.oauth2 import service_account

        path = path.expanduser()
        try:
            info = json.loads(_read_key(path))
        except (OSError, ValueError) as exc:
            raise CloudError(
                Finding(
                    False,
                    "gcp/bad-credentials-file",
                    f"cannot read {home_relative(path)} ({type(exc).__name__})",
                    "point at a valid key file, or run: gcloud auth application-default login",
                )
            ) from None
        if self.options.token_uri:
            info["token_uri"] = self.options.token_uri
        try:
            if info.get("type") == "service_account":
                return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
            if info.get("type") == "authorized_user":
                user = user_credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)
                # from_authorized_user_info always sets Google's token endpoint; the override wins here.
                return user.with_token_uri(self.options.token_uri) if self.options.token_uri else user
            creds, _ = google.auth.load_credentials_from_dict(info, scopes=list(SCOPES))
            return creds
        except (ValueError, KeyError, google.auth.exceptions.GoogleAuthError) as exc:
            raise CloudError(
                Finding(
                    False,
                    "gcp/bad-credentials-file",
                    f"{home_relative(path)} is not a usable credential ({type(exc).__name__})",
                    "create a new key, or run: gcloud auth application-default login",
                )
            ) from None

    def _request(self) -> Any:
        """A google-auth transport Request whose every call is bounded by the options' timeout."""
        load_sdk(*GCP_SDK)
        import requests
        from google.auth.transport.requests import Request

        timeout_s = self.options.timeout_s
        extra: dict[str, Any] = {"verify": self.options.ca_bundle} if self.options.ca_bundle else {}

        class BoundedRequest(Request):
            # google-auth's token refresh passes no timeout (its default is 120 s): impose ours. The CA
            # bundle goes on each call: a session-wide `verify` loses to $REQUESTS_CA_BUNDLE in requests.
            def __call__(
                self,
                url: str,
                method: str = "GET",
                body: Any = None,
                headers: Any = None,
                timeout: Any = None,
                **kwargs: Any,
            ) -> Any:
                return super().__call__(
                    url, method=method, body=body, headers=headers, timeout=timeout_s, **{**kwargs, **extra}
                )

        session = requests.Session()
        return BoundedRequest(session)

    def _refresh(self, creds: Any, credential: FoundCredential | None) -> None:
        try:
            creds.refresh(self._request())
        except Exception as exc:
            log.debug("token refresh failed: %s", type(exc).__name__)
            raise CloudError(_refresh_finding(exc, credential)) from None

    def access_token(self, credentials_file: Path | None = None) -> tuple[str, dt.datetime | None]:
        """A fresh OAuth access token and its expiry (UTC), e.g. for the GKE exec plugin."""
        creds = self._load(credentials_file or self._credential_file(None))
        self._refresh(creds, None)
        expiry = creds.expiry.replace(tzinfo=dt.UTC) if creds.expiry else None
        return str(creds.token), expiry



def _read_key(path: Path) -> str:
    """A key or ADC file's text, bounded: a FIFO or a device named by mistake is refused, not read."""
    from hfwizard.errors import BadInput
    from hfwizard.files import SECRET_LIMIT, read_bounded

    try:
        return read_bounded(path, what="Google credentials file", limit=SECRET_LIMIT).decode("utf-8")
    except BadInput as exc:
        raise OSError(exc.message) from None
