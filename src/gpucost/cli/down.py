"""`gpucost down`: remove everything the deployment made, found by its tags."""

from __future__ import annotations

from typing import Annotated

import typer

from gpucost.cli.options import (
    ConfigOpt,
    DeploymentOpt,
    JsonOpt,
    ProviderOpt,
    RegionOpt,
    YesOpt,
    build_config,
)
from gpucost.cli.output import console, err_console
from gpucost.cli.render import LiveProgress, print_json, removed_table
from gpucost.remote import lifecycle


def down(
    config_file: ConfigOpt = None,
    deployment: DeploymentOpt = None,
    provider: ProviderOpt = None,
    region: RegionOpt = None,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    images: Annotated[
        bool, typer.Option("--images", help="local: also remove the images it built.")
    ] = False,
) -> None:
    """Terminate the VMs and delete the security groups, key pair and network.

    Example: gpucost down --provider aws --region us-east-1 --yes
    """
    config = build_config(
        config_file,
        deployment=deployment,
        provider=provider,
        region=region,
        local_remove_images=images or None,
    )
    if not yes:
        typer.confirm(
            f"Remove everything of deployment {config.deployment!r} ({config.provider})?",
            abort=True,
        )
    with LiveProgress(err_console) as progress:
        removed = lifecycle.down(config, progress)
    if as_json:
        print_json([{"kind": r.kind, "id": r.id, "name": r.name} for r in removed])
    elif removed:
        console.print(removed_table(removed))
    else:
        console.print(f"nothing of deployment {config.deployment!r} was found")
