"""`gpucost up`: converge the four hosts, then deploy the roles on them over SSH."""

from __future__ import annotations

from typing import Annotated

import click
import typer

from gpucost.cli.options import (
    AdminCidrOpt,
    ConfigOpt,
    DeploymentOpt,
    ImageOpt,
    InstanceTypeOpt,
    JsonOpt,
    PriceOpt,
    ProviderOpt,
    RegionOpt,
    SshKeyOpt,
    SubnetOpt,
    YesOpt,
    build_config,
)
from gpucost.cli.output import console, err_console
from gpucost.cli.render import LiveProgress, inventory_table, plan_table, print_json
from gpucost.remote import lifecycle
from gpucost.remote.providers import ADMIN_ACCESS


def up(
    config_file: ConfigOpt = None,
    deployment: DeploymentOpt = None,
    provider: ProviderOpt = None,
    region: RegionOpt = None,
    instance_type: InstanceTypeOpt = None,
    image_id: ImageOpt = None,
    subnet_id: SubnetOpt = None,
    admin_cidr: AdminCidrOpt = None,
    ssh_public_key: SshKeyOpt = None,
    price_per_gpu_hour: PriceOpt = None,
    infra_only: Annotated[
        bool, typer.Option("--infra-only", help="Converge the cloud resources only; no SSH.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create or repair the four VMs, then deploy the pipeline on them over SSH.

    Example: gpucost up --provider aws --infra-only --yes --admin-cidr 203.0.113.7/32
    """
    config = build_config(
        config_file,
        deployment=deployment,
        provider=provider,
        region=region,
        instance_type=instance_type,
        image_id=image_id,
        subnet_id=subnet_id,
        admin_cidr=admin_cidr,
        ssh_public_key=ssh_public_key,
        price_per_gpu_hour=price_per_gpu_hour,
    )
    plan = lifecycle.plan(config)
    if dry_run and as_json:
        print_json([{**vars(c), "action": c.action.value} for c in plan.changes])
        return
    (err_console if as_json else console).print(plan_table(plan))
    if dry_run:
        return
    moved = [c for c in plan.pending if c.kind == ADMIN_ACCESS]
    if moved and not yes:
        change = moved[0]
        if not _confirm(f"The admin address of {change.name} changed ({change.detail}). Update?"):
            raise lifecycle.AdminAccessChanged(
                f"the firewall still admits {change.detail.split(' -> ')[0]}, "
                f"not {config.admin_cidr}",
                hint="run `gpucost up --yes` to move the rules to the new address, "
                "or pass the old --admin-cidr",
            )
    elif plan.pending and not yes and not _confirm("Apply this plan?"):
        raise typer.Abort()
    with LiveProgress(err_console) as progress:
        inventory = lifecycle.converge(config, progress)
    if as_json:
        print_json(inventory.to_json())
    else:
        console.print(inventory_table(inventory))
    if not infra_only:
        lifecycle.deploy(config, inventory, progress)


def _confirm(question: str) -> bool:
    try:
        return typer.confirm(question, default=False)
    except click.exceptions.Abort:  # no terminal to ask (stdin closed)
        return False
