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
