"""The step kinds of an install, each registered by its StepKind (see `steps.base` for how to add one)."""

from hfwizard.engine.steps import (
    charts,
    crds,
    databases,
    namespace,
    objects,
    release,
    secrets,
    uninstall,
    upgrade,
    verify,
)
from hfwizard.engine.steps.base import StepRunner, register, runner_for

__all__ = ["StepRunner", "charts", "crds", "databases", "namespace", "objects", "register", "release", "runner_for",
           "secrets", "uninstall", "upgrade", "verify"]
