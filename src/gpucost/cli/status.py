"""`gpucost status`: the deployment's hosts as the provider sees them now and,
once deployed, each VM's services as the VM sees them (over SSH)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gpucost.cli.options import (
    ConfigOpt,
    DeploymentOpt,
    JsonOpt,
    ProviderOpt,
    RegionOpt,
    build_config,
)
from gpucost.cli.output import console
from gpucost.cli.render import inventory_table, print_json
from gpucost.remote import lifecycle


def status(
    config_file: ConfigOpt = None,
    deployment: DeploymentOpt = None,
    provider: ProviderOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
    health: Annotated[
        bool,
        typer.Option(
            "--health/--no-health",
            help="Ask each VM over SSH how its services are (once `up` deployed them).",
        ),
    ] = True,
) -> None:
    """Show each VM: role, instance, state, public and private IP, security groups,
    and its services' health (systemd units, containers).

    Example: gpucost status --json
    """
    config = build_config(config_file, deployment=deployment, provider=provider, region=region)
    inventory = lifecycle.status(config)
    services: dict[str, dict[str, str]] | None = None
    if health and any(h.state == "running" for h in inventory.hosts):
        # Imported on use: paramiko is not needed for a cloud-only status.
        from gpucost.remote.health import deployed, service_health

        if deployed(config):
            services = {vm: found for vm, found in service_health(config, inventory).items()}
    if as_json:
        rows = inventory.to_json()
        if services is not None:  # deployed: each VM's services, {} for one not running
            rows = [{**row, "services": services.get(row["name"], {})} for row in rows]
        print_json(rows)
        return
    console.print(inventory_table(inventory))
    if services:
        console.print(_health_table(services))


def _health_table(services: dict[str, dict[str, str]]) -> Table:
    from gpucost.remote.health import HEALTHY

    table = Table(title="services", title_justify="left")
    for column in ("vm", "service", "state"):
        table.add_column(column)
    for vm, found in services.items():
        for name, state in found.items():
            style = "green" if state in HEALTHY else "bold red"
            table.add_row(vm, name, f"[{style}]{state}[/]")
    return table
