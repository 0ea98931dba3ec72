"""The clouds behind one protocol: `provider_for(cloud)` gives the provider, its SDK imported only then.

cloud/base.py holds the protocol and the shared types; each provider module imports base, and base
imports no provider, so there is no import loop between them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hfwizard.cloud.aws import AwsOptions
    from hfwizard.cloud.azure import AzureOptions
    from hfwizard.cloud.base import Cloud, CloudProvider
    from hfwizard.cloud.gcp import GcpOptions

CLOUDS: tuple[str, ...] = ("aws", "gcp", "azure")


def provider_for(
    cloud: Cloud | str, options: AwsOptions | GcpOptions | AzureOptions | None = None
) -> CloudProvider:
    """The provider for `cloud`; its module (and SDK) is imported only now."""
    from hfwizard.cloud.base import Cloud

    match Cloud(cloud):
        case Cloud.AWS:
            from hfwizard.cloud.aws import AwsOptions, AwsProvider

            assert options is None or isinstance(options, AwsOptions)
            return AwsProvider(options)
        case Cloud.GCP:
            from hfwizard.cloud.gcp import GcpOptions, GcpProvider

            assert options is None or isinstance(options, GcpOptions)
            return GcpProvider(options)
        case Cloud.AZURE:
            from hfwizard.cloud.azure import AzureOptions, AzureProvider

            assert options is None or isinstance(options, AzureOptions)
            return AzureProvider(options)
