"""Finding AWS credentials on this machine: shared config and credentials files, the environment."""

from __future__ import annotations

import os
from pathlib import Path

from hfwizard.cloud.aws_support import AwsOptions, _read_ini
from hfwizard.cloud.base import (
    Cloud,
    FoundCredential,
    Sealed,
    home_relative,
    mask,
)


class _AwsCredentials:
    """Finding AWS credentials on this machine: shared config and credentials files, the environment."""

    options: AwsOptions

    def _config_paths(self) -> tuple[Path, Path]:
        config = self.options.config_file or Path(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
        creds = self.options.credentials_file or Path(
            os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
        )
        return config.expanduser(), creds.expanduser()

    def discover_credentials(self) -> list[FoundCredential]:
        """Profiles in the shared config and credentials files, and credentials in the environment.

        Reads files only; no network. Secret values are looked at for presence, never kept.
        """
        config_path, creds_path = self._config_paths()
        profiles: dict[str, dict[str, str]] = {}
        sources: dict[str, str] = {}
        sso_sessions: dict[str, dict[str, str]] = {}
        for path, is_config in ((config_path, True), (creds_path, False)):
            parser = _read_ini(path)
            for section in parser.sections():
                if is_config and section.startswith("sso-session "):
                    sso_sessions[section.split(None, 1)[1].strip()] = dict(parser.items(section))
                    continue
                if is_config and section.startswith("services "):
                    continue
                name = (
                    section.split(None, 1)[1].strip()
                    if is_config and section.startswith("profile ")
                    else section
                )
                profiles.setdefault(name, {}).update(parser.items(section))
                # The config file names the profile's kind better than the credentials file: keep it.
                if is_config or name not in sources:
                    sources[name] = f"{home_relative(path)} [{section}]"
        found = [
            self._describe_profile(name, keys, sources[name], sso_sessions)
            for name, keys in sorted(profiles.items())
        ]
        found.extend(self._environment_credentials())
        return found

    def _describe_profile(
        self, name: str, keys: dict[str, str], source: str, sso_sessions: dict[str, dict[str, str]]
    ) -> FoundCredential:
        details: dict[str, str] = {"profile": name}
        region = keys.get("region")
        if "sso_session" in keys or "sso_start_url" in keys:
            kind = "aws-sso"
            session = sso_sessions.get(keys.get("sso_session", ""), {})
            for key in ("sso_session", "sso_account_id", "sso_role_name"):
                if key in keys:
                    details[key] = keys[key]
            start_url = keys.get("sso_start_url") or session.get("sso_start_url")
            if start_url:
                details["sso_start_url"] = start_url
            region = region or keys.get("sso_region") or session.get("sso_region")
        elif "role_arn" in keys:
            kind = "aws-assume-role"
            details["role_arn"] = keys["role_arn"]
            for key in (
                "source_profile",
                "credential_source",
                "role_session_name",
                "external_id_set",
                "mfa_serial",
            ):
                if key in keys:
                    details[key] = keys[key]
            if "web_identity_token_file" in keys:
                details["web_identity_token_file"] = keys["web_identity_token_file"]
        elif "credential_process" in keys:
            kind = "aws-process"
            details["credential_process"] = keys["credential_process"].split()[0]
        else:
            kind = "aws-profile"
            if keys.get("aws_access_key_id"):
                details["access_key_id"] = mask(keys["aws_access_key_id"])
            details["session_token"] = "yes" if keys.get("aws_session_token") else "no"
        return FoundCredential(Cloud.AWS, kind, name, source, region, details)

    def _environment_credentials(self) -> list[FoundCredential]:
        env = os.environ
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        found = []
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            found.append(
                FoundCredential(
                    Cloud.AWS,
                    "aws-env",
                    "environment",
                    "environment (AWS_ACCESS_KEY_ID)",
                    region,
                    {
                        "access_key_id": mask(env["AWS_ACCESS_KEY_ID"]),
                        "session_token": "yes" if env.get("AWS_SESSION_TOKEN") else "no",
                    },
                )
            )
        if env.get("AWS_ROLE_ARN") and env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
            found.append(
                FoundCredential(
                    Cloud.AWS,
                    "aws-web-identity",
                    "web identity",
                    "environment (AWS_WEB_IDENTITY_TOKEN_FILE)",
                    region,
                    {"role_arn": env["AWS_ROLE_ARN"]},
                )
            )
        return found

    def static_credential(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        *,
        name: str = "static keys",
        source: str = "given keys",
        region: str | None = None,
    ) -> FoundCredential:
        """An "aws-static" credential: keys already in hand (resolved from the profile's references),
        kept in memory only. Nothing goes to a credentials file or the process environment, which other
        threads share."""
        keys = {"access_key_id": access_key_id.strip(), "secret_access_key": secret_access_key.strip()}
        if session_token:
            keys["session_token"] = session_token.strip()
        return FoundCredential(
            Cloud.AWS,
            "aws-static",
            name,
            source,
            region,
            {"access_key_id": mask(keys["access_key_id"]), "session_token": "yes" if session_token else "no"},
            Sealed(**keys),
        )

