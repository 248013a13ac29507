"""What every provider (aws, local) offers: plan, converge, list and destroy the
four hosts. The deploy over SSH consumes the Inventory and never asks who made it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from gpucost.config.settings import GpucostConfig
from gpucost.inventory import Inventory


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    KEEP = "keep"


ADMIN_ACCESS = "admin access"
"""`Change.kind` of a firewall rule whose admin address moved: `up` asks before it
rewrites one, since the old address may be someone's way in."""


@dataclass(frozen=True)
class Change:
    """One line of a plan: what would happen to one resource."""

    action: Action
    kind: str
    """What sort of resource: "instance", "security group", "ingress rule", ..."""
    name: str
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    provider: str
    deployment: str
    changes: tuple[Change, ...] = ()

    @property
    def pending(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is not Action.KEEP)

    @property
    def in_sync(self) -> bool:
        return not self.pending


@dataclass(frozen=True)
class Resource:
    """A resource a provider made, as `down` reports it."""

    kind: str
    id: str
    name: str = ""


@dataclass(frozen=True)
class ProgressEvent:
    """A live line: `action` is created/exists/updated/deleted/gone/waiting/retrying."""

    kind: str
    name: str
    action: str
    detail: str = ""

    @property
    def waiting(self) -> bool:
        return self.action == "waiting"


Progress = Callable[[ProgressEvent], None]


def no_progress(event: ProgressEvent) -> None:
    """A progress sink for library callers that do not show progress."""


@runtime_checkable
class Provider(Protocol):
    """Makes the deployment's hosts exist. Every method is safe to repeat, and
    `plan` makes no change at all (it backs `up --dry-run`)."""

    name: str

    def plan(self, config: GpucostConfig) -> Plan: ...

    def converge(self, config: GpucostConfig, progress: Progress = no_progress) -> Inventory:
        """Create or repair whatever is missing; keep what is there."""
        ...

    def inventory(self, config: GpucostConfig) -> Inventory:
        """What exists now, read from the provider (not from local state)."""
        ...

    def ready(
        self, config: GpucostConfig, inventory: Inventory, progress: Progress = no_progress
    ) -> Inventory:
        """Wait until the hosts can be reached safely (their host keys published,
        the admin let in); the inventory to deploy with. Before any SSH."""
        ...

    def destroy(self, config: GpucostConfig, progress: Progress = no_progress) -> list[Resource]:
        """Remove everything of the deployment, found without local state."""
        ...
