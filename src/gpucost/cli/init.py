"""`gpucost init`: write a commented gpucost.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gpucost.cli.options import (
    AdminCidrOpt,
    DeploymentOpt,
    InstanceTypeOpt,
    PriceOpt,
    ProviderOpt,
    RegionOpt,
    SshKeyOpt,
    YesOpt,
    build_config,
)
from gpucost.cli.output import console, err_console
from gpucost.config.init_file import create_ssh_key, detect_public_ip, write_config
from gpucost.config.settings import DEFAULT_CONFIG_FILE
from gpucost.config.support import check_settings
from gpucost.errors import GpucostError


def init(
    path: Annotated[Path, typer.Option("--path", help="Where to write the file.")] = (
        DEFAULT_CONFIG_FILE
    ),
    deployment: DeploymentOpt = None,
    provider: ProviderOpt = None,
    region: RegionOpt = None,
    instance_type: InstanceTypeOpt = None,
    admin_cidr: AdminCidrOpt = None,
    ssh_public_key: SshKeyOpt = None,
    price_per_gpu_hour: PriceOpt = None,
    detect_ip: Annotated[
        bool,
        typer.Option(
            "--detect-ip/--no-detect-ip",
            help="Offer to detect your public IP for --admin-cidr when it is not given.",
        ),
    ] = True,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    yes: YesOpt = False,
) -> None:
    """Write a commented gpucost.toml with your settings.

    Example: gpucost init --provider aws --region us-east-1
    """
    if path.exists() and not force:
        raise GpucostError(f"{path} exists", hint="pass --force to overwrite it")
    if admin_cidr is None and detect_ip:
        question = "Detect your public IP (asks checkip.amazonaws.com) for the admin CIDR?"
        if yes or typer.confirm(question, default=True):
            try:
                admin_cidr = detect_public_ip()
                err_console.print(f"admin CIDR: {admin_cidr}")
            except GpucostError as error:
                err_console.print(f"[yellow]warning:[/] {error.one_line()}", highlight=False)
    # Settings from the environment count; a file being overwritten does not.
    settings = build_config(
        None,
        use_file=False,
        deployment=deployment,
        provider=provider,
        region=region,
        instance_type=instance_type,
        admin_cidr=admin_cidr,
        ssh_public_key=ssh_public_key,
        price_per_gpu_hour=price_per_gpu_hour,
    )
    # A database the image cannot carry is refused before any file or key is made.
    check_settings(settings)
    key = settings.ssh_public_key
    if not key.exists() and (
        yes or typer.confirm(f"{key} does not exist. Create an ed25519 key pair?", default=True)
    ):
        create_ssh_key(key)
        err_console.print(f"created {key} (the private key stays next to it)")
    write_config(path, settings, force=force)
    console.print(f"wrote {path}")
