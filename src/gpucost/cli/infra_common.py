"""What `init`, `up`, `down` and `status` share: their options, how they become
settings, and how plans, progress and inventories are shown."""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from gpucost.config.settings import GpucostConfig, load_config
from gpucost.inventory import Inventory
from gpucost.remote.providers import Action, Plan, ProgressEvent, Resource

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", envvar="GPUCOST_CONFIG", help="Settings file [default: ./gpucost.toml]."
    ),
]
DeploymentOpt = Annotated[
    str | None, typer.Option("--deployment", help="Deployment name (names and tags resources).")
]
ProviderOpt = Annotated[str | None, typer.Option("--provider", help="aws or local.")]
RegionOpt = Annotated[str | None, typer.Option("--region", help="AWS region, e.g. us-east-1.")]
InstanceTypeOpt = Annotated[
    str | None, typer.Option("--instance-type", help="EC2 instance type [default: t3a.medium].")
]
ImageOpt = Annotated[
    str | None,
    typer.Option("--image-id", help="AMI id [default: Ubuntu 22.04, Canonical's SSM parameter]."),
]
SubnetOpt = Annotated[
    str | None, typer.Option("--subnet-id", help="Subnet for the VMs [default: default VPC].")
]
AdminCidrOpt = Annotated[
    str | None,
    typer.Option("--admin-cidr", help="Who may reach SSH and the API, e.g. 203.0.113.7/32."),
]
SshKeyOpt = Annotated[
    Path | None,
    typer.Option("--ssh-public-key", help="Public key to import [default: ~/.ssh/id_ed25519.pub]."),
]
PriceOpt = Annotated[
    float | None, typer.Option("--price-per-gpu-hour", help="USD per GPU-hour for pricing.")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def build_config(config_file: Path | None, *, use_file: bool = True, **flags: Any) -> GpucostConfig:
    """Flags over GPUCOST_* over the file over defaults."""
    renamed = {"price_per_gpu_hour_usd": flags.pop("price_per_gpu_hour", None), **flags}
    return load_config(config_file, use_file=use_file, **renamed)


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
