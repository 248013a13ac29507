"""`gpucost logs`: the logs of a VM's service, through ssh."""

from __future__ import annotations

from typing import Annotated

import typer

from gpucost.cli.options import ConfigOpt, DeploymentOpt, ProviderOpt, VmArg
from gpucost.cli.ssh import hand_over
from gpucost.config.settings import load_config


def logs(
    vm: VmArg,
    config_file: ConfigOpt = None,
    deployment: DeploymentOpt = None,
    provider: ProviderOpt = None,
    service: Annotated[
        str | None,
        typer.Option(
            help="processor, producer, agent, kafka, zookeeper, mongodb, secantusdb, sshd, ufw."
        ),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
) -> None:
    """Print the logs of a VM's service (its main one by default).

    Example: gpucost logs vm3 --follow --service processor
    """
    from gpucost.remote.commands import host_name, logs_argv

    config = load_config(config_file, deployment=deployment, provider=provider)
    hand_over(logs_argv(config, host_name(vm, config), service, follow))
