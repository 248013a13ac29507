"""`gpucost ssh`, `logs` and `produce` on a running deployment; and the deploy
stage of `up`, plugged in here so that importing the CLI stays cheap."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from gpucost.cli.infra_common import ConfigOpt, DeploymentOpt, JsonOpt, ProviderOpt, print_json
from gpucost.cli.output import console, err_console
from gpucost.config.settings import GpucostConfig, load_config
from gpucost.errors import InputError
from gpucost.inventory import Inventory
from gpucost.remote import lifecycle
from gpucost.remote.providers import Progress

VmArg = Annotated[str, typer.Argument(help="vm1, vm2, vm3 or vm4.")]


def _deploy(config: GpucostConfig, inventory: Inventory, progress: Progress) -> None:
    # Imported on use: paramiko and the plan are not needed for `--help`.
    from gpucost.remote.deploy import deploy

    deploy(config, inventory, progress)


lifecycle.set_deploy_stage(_deploy)


def _config(
    config_file: Path | None, deployment: str | None, provider: str | None
) -> GpucostConfig:
    return load_config(config_file, deployment=deployment, provider=provider)


def _exec(argv: list[str]) -> None:
    if shutil.which(argv[0]) is None:
        raise InputError(f"no `{argv[0]}` on this machine", hint="install openssh-client")
    os.execvp(argv[0], argv)  # noqa: S606 - the user's own ssh, with a fixed argv


def ssh(
    ctx: typer.Context,
    vm: VmArg,
    config_file: ConfigOpt = None,
    deployment: DeploymentOpt = None,
    provider: ProviderOpt = None,
    forget_host_key: Annotated[
        bool,
        typer.Option("--forget-host-key", help="Drop the VM's pinned host key (VM recreated)."),
    ] = False,
) -> None:
    """Open a shell on a VM with the managed key and its pinned host key.

    Example: gpucost ssh vm3 -- hostname
    """
    from gpucost.remote.commands import ssh_argv, vm_name
    from gpucost.remote.deploy import state_of
    from gpucost.remote.hostkeys import HostKeyStore

    config = _config(config_file, deployment, provider)
    name = vm_name(vm)
    if forget_host_key:
        HostKeyStore(state_of(config)).forget(name)
        err_console.print(f"forgot the pinned host key of {name}")
        return
    _exec(ssh_argv(config, name, list(ctx.args)))


def logs(
    vm: VmArg,
    config_file: ConfigOpt = None,
    deployment: DeploymentOpt = None,
    provider: ProviderOpt = None,
    service: Annotated[
        str | None,
        typer.Option(help="processor, producer, kafka, zookeeper, mongodb, secantusdb, sshd, ufw."),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
) -> None:
    """Print the logs of a VM's service (its main one by default).

    Example: gpucost logs vm3 --follow --service processor
    """
    from gpucost.remote.commands import logs_argv, vm_name

    config = _config(config_file, deployment, provider)
    _exec(logs_argv(config, vm_name(vm), service, follow))


def produce(
    rate: Annotated[float, typer.Option(help="Events per second, per producer.", min=0.001)] = 50,
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run one-off producers for.", min=0.001)
    ] = None,
    count: Annotated[int | None, typer.Option(help="Events each one-off producer sends.")] = None,
    replicas: Annotated[int, typer.Option(help="How many producers.", min=1, max=2)] = 1,
    config_file: ConfigOpt = None,
    deployment: DeploymentOpt = None,
    provider: ProviderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the producers on vm4 to a rate, or run one-off producers for a while.

    Without --duration or --count the long-running producers change rate (until
    the next `gpucost up`, which applies [producers] of the settings).

    Example: gpucost produce --rate 50 --duration 10
    """
    from gpucost.remote.commands import produce as run_produce

    config = _config(config_file, deployment, provider)
    outcome = run_produce(config, rate=rate, count=count, duration=duration, replicas=replicas)
    if as_json:
        print_json(outcome)
    elif isinstance(outcome, str):
        console.print(f"producers: {replicas} at {rate:g}/s each ({outcome})")
    else:
        for summary in outcome:
            console.print(
                f"sent {summary.get('sent')} acked {summary.get('acked')} "
                f"failed {summary.get('failed')} at {summary.get('rate', 0):.1f}/s"
            )
