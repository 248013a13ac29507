"""Providers by name. Each is imported only when asked for, so `gpucost --help`
and the local provider never load boto3."""

from __future__ import annotations

from collections.abc import Callable

from gpucost.errors import GpucostError, MissingDependency
from gpucost.remote.providers.base import (
    ADMIN_ACCESS,
    Action,
    Change,
    Plan,
    Progress,
    ProgressEvent,
    Provider,
    Resource,
    no_progress,
)

__all__ = [
    "ADMIN_ACCESS",
    "Action",
    "Change",
    "Plan",
    "Progress",
    "ProgressEvent",
    "Provider",
    "ProviderUnavailable",
    "Resource",
    "get_provider",
    "no_progress",
    "register_provider",
]


class ProviderUnavailable(GpucostError):
    """The provider asked for cannot be used here."""


def _aws() -> Provider:
    try:
        from gpucost.remote.providers.aws import AwsProvider
    except ModuleNotFoundError as exc:
        missing = MissingDependency.for_import(exc, "the aws provider")
        if missing is None:
            raise
        raise missing from exc
    return AwsProvider()


def _local() -> Provider:
    from gpucost.remote.providers.local import LocalProvider

    return LocalProvider()


_FACTORIES: dict[str, Callable[[], Provider]] = {"aws": _aws, "local": _local}


def register_provider(name: str, factory: Callable[[], Provider]) -> None:
    """Plug a provider in (the local provider replaces its placeholder this way)."""
    _FACTORIES[name] = factory


def get_provider(name: str) -> Provider:
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ProviderUnavailable(
            f"unknown provider {name!r}", hint="choose one of: " + ", ".join(sorted(_FACTORIES))
        ) from None
    return factory()
