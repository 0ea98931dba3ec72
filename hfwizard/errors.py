"""The errors hfwizard raises on purpose, each carrying the exit code and what the operator should do.

    HfwizardError                      exit 1 unless a subclass says otherwise
     ├── BadInput                      exit 2: the operator's input cannot be used
     │    ├── ProfileError             a profile that does not parse, validate or migrate
     │    └── SecretError              a secret reference that does not resolve
     ├── Failed                        exit 1: a check or a step failed
     │    ├── CheckFailed
     │    └── StepFailed
     ├── NotAvailable                  exit 1: a feature that is not built yet says so
     └── LockHeld                      exit 4: another install holds the target
          └── LockLost                 exit 4: another install took the target over from us mid-run

No message ever contains a secret value: errors name the field or reference, never what it resolved to.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    INTERRUPTED = 3
    LOCKED = 4


class HfwizardError(Exception):
    """Base of every error meant for the operator: a message and, where there is one, a remedy."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy

    def __str__(self) -> str:
        return self.message if not self.remedy else f"{self.message}\n  -> {self.remedy}"


class BadInput(HfwizardError):
    exit_code = ExitCode.BAD_INPUT


class ProfileError(BadInput):
    """A profile that cannot be used; `problems` lists one line per field at fault."""

    def __init__(self, message: str, problems: list[str] | None = None, *, remedy: str | None = None) -> None:
        super().__init__(message, remedy=remedy)
        self.problems = problems or []

    def __str__(self) -> str:
        lines = [self.message, *(f"  - {p}" for p in self.problems)]
        if self.remedy:
            lines.append(f"  -> {self.remedy}")
        return "\n".join(lines)


class SecretError(BadInput):
    """A secret reference that cannot be resolved (missing variable, file, keyring entry...)."""


class Failed(HfwizardError):
    exit_code = ExitCode.FAILED


class CheckFailed(Failed):
    pass


class StepFailed(Failed):
    pass


class NotAvailable(HfwizardError):
    """A command whose machinery is not built yet: it says so and exits 1, never a fake success."""

    exit_code = ExitCode.FAILED


class LockHeld(HfwizardError):
    exit_code = ExitCode.LOCKED


class LockLost(LockHeld):
    """Our Lease was taken over while we ran (we were frozen past its duration): stop before the next
    change to the cluster, since another install now owns the target."""
