"""The step-kind interface and its registry: a kind is a class with `run` and `still_done`, registered once.

    @register(StepKind.NAMESPACE)
    class NamespaceStep(StepRunner):
        async def run(self, ctx: StepContext) -> StepResult: ...
        async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]: ...

The run loop looks a step's kind up here and never names a kind itself, so a new kind is a module
under `hfwizard/engine/steps/` plus its import line in `steps/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Callable

from hfwizard.engine.context import StepContext, StepResult
from hfwizard.store.journal import StepState


class StepRunner:
    """One kind of step. Instances hold no state of a run: everything comes through the context."""

    async def run(self, ctx: StepContext) -> StepResult:
        """Do the step (idempotently: a resume may run it again after a crash halfway through)."""
        raise NotImplementedError

    async def still_done(self, ctx: StepContext, record: StepState) -> tuple[bool, str]:
        """On resume: whether what the journal recorded as done is still so in the cluster, and why."""
        return False, "not checkable"


_RUNNERS: dict[str, StepRunner] = {}


def register(kind: str) -> Callable[[type[StepRunner]], type[StepRunner]]:
    """Class decorator: the runner of steps of `kind` (a StepKind, or any string a plan uses)."""

    def add(cls: type[StepRunner]) -> type[StepRunner]:
        if kind in _RUNNERS and type(_RUNNERS[kind]) is not cls:
            raise ValueError(f"step kind {kind!r} is registered twice")
        _RUNNERS[kind] = cls()
        return cls

    return add


def runner_for(kind: str) -> StepRunner:
    try:
        return _RUNNERS[kind]
    except KeyError:
        raise LookupError(f"no step runner registered for kind {kind!r}") from None
