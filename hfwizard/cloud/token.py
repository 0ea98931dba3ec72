"""kubectl/client-go exec credential plugin: `python -m hfwizard.cloud.token aws|gcp|azure` prints a token."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from hfwizard.cloud.base import Cloud, CloudError, FoundCredential, exec_credential


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hfwizard.cloud.token",
        description="Print a Kubernetes ExecCredential for a managed cluster.",
    )
    sub = parser.add_subparsers(dest="cloud", required=True)
    aws = sub.add_parser("aws", help="EKS: a presigned STS GetCallerIdentity token")
    aws.add_argument("--cluster", required=True)
    aws.add_argument("--region", required=True)
    aws.add_argument("--profile")
    aws.add_argument("--endpoint-url")
    gcp = sub.add_parser("gcp", help="GKE: a Google OAuth access token")
    gcp.add_argument("--credentials-file", type=Path, help="ADC or service-account key file")
    gcp.add_argument("--token-uri")
    gcp.add_argument("--ca-bundle")
    azure = sub.add_parser("azure", help="AKS with Entra ID: an access token for the AKS server application")
    azure.add_argument("--kind", required=True, choices=["azure-env", "azure-cli", "azure-managed-identity"])
    azure.add_argument("--tenant")
    azure.add_argument("--authority-host")
    azure.add_argument("--ca-bundle")
    for p in (aws, gcp, azure):
        p.add_argument("--timeout", type=float, default=15.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    expiry: dt.datetime | None
    try:
        if args.cloud == "aws":
            from hfwizard.cloud.aws import AwsOptions, AwsProvider

            aws = AwsProvider(AwsOptions(endpoint_url=args.endpoint_url, timeout_s=args.timeout))
            cred = FoundCredential(
                Cloud.AWS,
                "aws-profile" if args.profile else "aws-default",
                args.profile or "default chain",
                "exec plugin",
                args.region,
                {"profile": args.profile} if args.profile else {},
            )
            token, expiry = aws.eks_token(cred, args.cluster, args.region)
        elif args.cloud == "gcp":
            from hfwizard.cloud.gcp import GcpOptions, GcpProvider

            gcp = GcpProvider(
                GcpOptions(token_uri=args.token_uri, ca_bundle=args.ca_bundle, timeout_s=args.timeout)
            )
            token, expiry = gcp.access_token(args.credentials_file)
        else:
            from hfwizard.cloud.azure import AKS_SERVER_SCOPE, AzureOptions, AzureProvider

            az = AzureProvider(
                AzureOptions(
                    authority_host=args.authority_host, ca_bundle=args.ca_bundle, timeout_s=args.timeout
                )
            )
            cred = FoundCredential(
                Cloud.AZURE,
                args.kind,
                "exec plugin",
                "exec plugin",
                None,
                {"tenant_id": args.tenant} if args.tenant else {},
            )
            token, expiry = az.access_token(cred, AKS_SERVER_SCOPE)
    except CloudError as exc:
        # client-go shows stderr to the operator; the finding carries no secret.
        print(f"hfwizard token: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(exec_credential(token, expiry.strftime("%Y-%m-%dT%H:%M:%SZ") if expiry else None) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
