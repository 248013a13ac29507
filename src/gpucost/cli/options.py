"""The options the commands share, and how flags become settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gpucost.config.settings import GpucostConfig, load_config

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
VmArg = Annotated[str, typer.Argument(help="vm1, vm2, vm3, vm4 or a [[gpu_hosts]] name.")]


def build_config(config_file: Path | None, *, use_file: bool = True, **flags: Any) -> GpucostConfig:
    """Flags over GPUCOST_* over the file over defaults."""
    renamed = {"price_per_gpu_hour_usd": flags.pop("price_per_gpu_hour", None), **flags}
    return load_config(config_file, use_file=use_file, **renamed)
