"""`gpucost status`: the deployment's hosts as the provider sees them now."""

from __future__ import annotations

from gpucost.cli.app import app
from gpucost.cli.infra_common import (
    ConfigOpt,
    DeploymentOpt,
    JsonOpt,
    ProviderOpt,
    RegionOpt,
    build_config,
    inventory_table,
    print_json,
)
from gpucost.cli.output import console
from gpucost.remote import lifecycle


@app.command()
def status(
    config_file: ConfigOpt = None,
    deployment: DeploymentOpt = None,
    provider: ProviderOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show each VM: role, instance, state, public and private IP, security groups.

    Example: gpucost status --json
    """
    config = build_config(config_file, deployment=deployment, provider=provider, region=region)
    inventory = lifecycle.status(config)
    if as_json:
        print_json(inventory.to_json())
    else:
        console.print(inventory_table(inventory))
