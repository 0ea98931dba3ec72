"""Managed PostgreSQL size check: the instance's vCPUs and memory from the cloud API, against the sizing."""

from __future__ import annotations

import time

from hfwizard.checks.base import Check, CheckResult, Status, result
from hfwizard.checks.cloud import CloudAccess, CredentialProblem, sign_in
from hfwizard.checks.threads import imported, in_thread
from hfwizard.errors import SecretError

CHECK_ID = "postgres/size"
# Providers count memory in GB or GiB by product: allow 5 % under the floor, as for nodes.
MEMORY_SLACK = 0.95
_SERVICE = {"aws": "RDS instance", "gcp": "Cloud SQL instance", "azure": "Azure Database server"}


def title(vcpu: int, memory_gib: int) -> str:
    return f"PostgreSQL instance {vcpu} vCPU / {memory_gib} GiB or more"


async def check_postgres_size(access: CloudAccess, host: str, vcpu: int, memory_gib: int) -> CheckResult:
    started = time.monotonic()
    await imported("hfwizard.cloud.databases")  # on the checks' pool, not the event loop
    from hfwizard.cloud.base import CloudError
    from hfwizard.cloud.databases import find_postgres

    name = title(vcpu, memory_gib)
    try:
        signed = await sign_in(access)
    except (SecretError, CredentialProblem) as exc:
        return result(CHECK_ID, name, Status.SKIPPED, f"not checked: the {access.cloud} credentials do not "
                      f"sign in ({exc.message}; see cloud/identity)", None, started)
    try:
        found, seen = await in_thread(find_postgres, signed.provider, signed.credential, host, access.region)
    except CloudError as exc:
        return result(CHECK_ID, name, Status.WARN, f"size not checked: {exc.finding.message}",
                      exc.finding.remedy, started, code=exc.finding.code)
    service = _SERVICE.get(access.cloud, "instance")
    if found is None:
        where = f" in {access.region}" if access.region else ""
        return result(CHECK_ID, name, Status.WARN,
                      f"no {service}{where} has the endpoint {host} ({seen} PostgreSQL instance"
                      f"{'s' * (seen != 1)} listed): its size is not checked",
                      f"check postgres.host is the instance's endpoint; a server the cloud does not list "
                      f"needs {vcpu} vCPU and {memory_gib} GiB all the same", started, listed=seen)
    shown = f"{service} {found.name} ({found.instance_class or 'class unknown'})"
    if found.cores is None or found.memory_gib is None:
        return result(CHECK_ID, name, Status.WARN, f"{shown}: its vCPUs and memory are not known for this class",
                      f"make sure it has at least {vcpu} vCPU and {memory_gib} GiB", started)
    size = f"{found.cores} vCPU, {found.memory_gib:g} GiB"
    if found.cores < vcpu or found.memory_gib < memory_gib * MEMORY_SLACK:
        return result(CHECK_ID, name, Status.FAIL, f"{shown} has {size}; Highflame needs at least {vcpu} vCPU "
                      f"and {memory_gib} GiB (sizing.postgres)",
                      f"resize {found.name} to a class with at least {vcpu} vCPU and {memory_gib} GiB", started,
                      cores=found.cores, memory_gib=found.memory_gib)
    return result(CHECK_ID, name, Status.PASS, f"{shown}: {size}", None, started, cores=found.cores,
                  memory_gib=found.memory_gib)


def postgres_size_check(access: CloudAccess | None, host: str | None, vcpu: int, memory_gib: int,
                        timeout: float, why_not: str = "") -> Check:
    name = title(vcpu, memory_gib)

    async def run() -> CheckResult:
        if not host:
            return result(CHECK_ID, name, Status.SKIPPED, "not checked: postgres.host is not set "
                          "(see postgres/reachable)")
        if access is None:
            return result(CHECK_ID, name, Status.SKIPPED,
                          f"not checked: {why_not or 'no cloud account in the profile'}; make sure the "
                          f"server has at least {vcpu} vCPU and {memory_gib} GiB")
        return await check_postgres_size(access, host, vcpu, memory_gib)

    return Check(CHECK_ID, name, run, timeout)
