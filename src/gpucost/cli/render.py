"""How the commands show what the library returns: JSON for scripts, and for people
the plan, live progress, the inventory and what was removed."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from gpucost.inventory import Inventory
from gpucost.remote.providers import Action, Plan, ProgressEvent, Resource


def print_json(data: Any) -> None:
    # Plain print: rich would wrap and colour what scripts parse.
    typer.echo(json.dumps(data, indent=2))


_STYLE = {
    "created": "green",
    "updated": "yellow",
    "deleted": "red",
    "retrying": "yellow",
    "exists": "dim",
}


class LiveProgress:
    """One line per resource as it is done; a spinner while AWS is waited on."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._status: Status | None = None

    def __call__(self, event: ProgressEvent) -> None:
        self._stop()
        if event.waiting:
            self._status = self._console.status(
                escape(f"waiting for {event.kind} {event.name} {event.detail}".strip())
            )
            self._status.start()
            return
        style = _STYLE.get(event.action, "")
        detail = f" [dim]{escape(event.detail)}[/]" if event.detail else ""
        self._console.print(
            f"  [{style}]{event.action:>8}[/] {escape(event.kind)} [bold]{escape(event.name)}[/]"
            + detail,
            highlight=False,
        )

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def __enter__(self) -> LiveProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()


_ACTION_STYLE = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.DELETE: "red"}


def plan_table(plan: Plan) -> Table:
    table = Table(title=f"plan for {plan.deployment} ({plan.provider})", title_justify="left")
    for column in ("action", "resource", "name", "detail"):
        table.add_column(column)
    for change in plan.changes:
        style = _ACTION_STYLE.get(change.action, "dim")
        table.add_row(
            f"[{style}]{change.action.value}[/]",
            escape(change.kind),
            escape(change.name),
            escape(change.detail),
        )
    return table


def inventory_table(inventory: Inventory) -> Table:
    where = f"{inventory.provider} {inventory.region or ''}".strip()
    table = Table(title=f"{inventory.deployment} on {where}", title_justify="left")
    for column in ("vm", "role", "instance", "state", "public ip", "private ip", "security groups"):
        table.add_column(column)
    for host in inventory.hosts:
        table.add_row(
            host.name,
            host.role,
            host.instance_id or "-",
            host.state,
            host.public_ip or "-",
            host.private_ip or "-",
            ", ".join(host.security_groups) or "-",
        )
    return table


def removed_table(removed: list[Resource]) -> Table:
    table = Table(title="removed", title_justify="left")
    for column in ("resource", "id", "name"):
        table.add_column(column)
    for resource in removed:
        table.add_row(resource.kind, resource.id, resource.name)
    return table
