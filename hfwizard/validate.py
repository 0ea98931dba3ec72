"""Input checks a command runs before it touches anything: state directory, kubeconfig, files, references.

Each problem is bad input (exit 2) naming the field or option and what to do, found before any cluster
change, so an install never stops half-way for a typo in a path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hfwizard.errors import BadInput, HfwizardError
from hfwizard.files import CA_LIMIT, KUBECONFIG_LIMIT, check_regular, check_state_root
from hfwizard.profile import InstallProfile, secret_paths


def check_kubeconfig(path: str | Path | None, *, field: str) -> None:
    """A kubeconfig named by the operator must be readable regular files of sane size. A list
    (`a:b`, as $KUBECONFIG allows) is merged by the Kubernetes client, which skips missing parts, so
    at least one must exist and every one that exists must be a regular file."""
    if path is None or str(path) == "":
        return
    parts = [p for p in str(path).split(os.pathsep) if p]
    present = [p for p in parts if os.path.lexists(os.path.expanduser(p))]
    if not present:
        raise BadInput(f"{field}: kubeconfig {path} does not exist",
                       remedy="give the path of your cluster's kubeconfig (e.g. ~/.kube/config), "
                              "or write one with your cloud's CLI (aws eks update-kubeconfig ...)")
    for part in present:
        check_regular(part, what=f"{field} (kubeconfig)", limit=KUBECONFIG_LIMIT)


def check_ca_files(profile: InstallProfile) -> None:
    """CA bundles the profile names (postgres.caCert, redis.caCert) are regular files of sane size."""
    for field, value in (("postgres.caCert", profile.postgres.ca_cert), ("redis.caCert", profile.redis.ca_cert)):
        if value:
            check_regular(value, what=field, limit=CA_LIMIT)


def references(profile: InstallProfile) -> Iterator[tuple[str, str]]:
    """(field path, reference) for every secret reference the profile holds."""
    data = profile.model_dump(mode="json", by_alias=True, exclude_none=True)
    for path in sorted(secret_paths()):
        node: Any = data
        for key in path.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str):
            yield path, node
        elif isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str):
                    yield f"{path}.{key}", value


def check_references(profile: InstallProfile, base_dir: Path | None = None,
                     skip: tuple[str, ...] = ()) -> None:
    """Resolve every env:, file: and keyring: reference now (but those under a `skip` prefix); all that
    fail are named in one error. k8s: references live in the cluster and are read there."""
    from hfwizard.secrets import RefKind, parse_ref, resolve

    problems: list[str] = []
    for path, ref in references(profile):
        parsed = parse_ref(ref)
        if parsed.kind is RefKind.K8S or any(path == p or path.startswith(p + ".") for p in skip):
            continue
        try:
            resolve(parsed, base_dir=base_dir)
        except HfwizardError as exc:
            problems.append(f"{path}: {exc.message}" + (f" ({exc.remedy})" if exc.remedy else ""))
    if problems:
        raise BadInput("secret reference" + ("s do" if len(problems) > 1 else " does") + " not resolve:\n  - "
                       + "\n  - ".join(problems),
                       remedy="set the variables / create the files named above, then run again")


def check_inputs(profile: InstallProfile, *, base_dir: Path | None, kubeconfig: str | Path | None,
                 kubeconfig_field: str = "target.kubeconfig", state_root: Path | None = None,
                 ca_file: str | None = None, skip_references: tuple[str, ...] = ()) -> None:
    """Every check above that applies; raises BadInput (exit 2) at the first kind of problem."""
    if state_root is not None:
        check_state_root(state_root)
    check_kubeconfig(kubeconfig, field=kubeconfig_field)
    check_ca_files(profile)
    if ca_file:
        check_regular(ca_file, what="--ca-file", limit=CA_LIMIT)
    check_references(profile, base_dir, skip_references)
