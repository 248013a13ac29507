"""The errors users meet: each carries a hint and maps to a named exit status.

Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    """The command ran and failed: a check did not pass, a cloud call was refused."""
    USAGE = 2
    """Bad input or settings: nothing was done."""
    INTERRUPTED = 130


class GpucostError(Exception):
    """An error a user can act on: one line of what happened, one of what to do."""

    exit_status: ExitStatus = ExitStatus.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(GpucostError):
    """A setting is missing or invalid."""

    exit_status = ExitStatus.USAGE


class InputError(GpucostError):
    """A file or argument given by the user cannot be used."""

    exit_status = ExitStatus.USAGE


class ServiceUnavailable(GpucostError):
    """Kafka, MongoDB or another dependency did not answer in time."""


# The imports that commands make only when they need them (SSH, AWS, PNG) and the
# requirement that brings each, with the floor pyproject.toml asks for. `pip install
# gpucost` brings all of them; a slimmer install (the container image's) lacks them.
OPTIONAL_PACKAGES: dict[str, str] = {
    "paramiko": "paramiko>=3.4",
    "boto3": "boto3>=1.34",
    "botocore": "boto3>=1.34",
    "matplotlib": "matplotlib>=3.8",
}


class MissingDependency(GpucostError):
    """A package a command needs is not installed here: one line with the install."""

    def __init__(self, module: str, needed_for: str = "this command") -> None:
        requirement = OPTIONAL_PACKAGES[module]
        package = requirement.partition(">")[0]
        super().__init__(
            f"{needed_for} needs {package}, which is not installed",
            hint=f"pip install '{requirement}'",
        )

    @classmethod
    def for_import(
        cls, error: ModuleNotFoundError, needed_for: str = "this command"
    ) -> MissingDependency | None:
        """The error for a failed import, or None when the module is not one we name."""
        module = (error.name or "").partition(".")[0]
        return cls(module, needed_for) if module in OPTIONAL_PACKAGES else None
