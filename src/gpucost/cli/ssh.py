"""`gpucost ssh`: a shell on a VM of a running deployment, with the managed key and
its pinned host key."""

from __future__ import annotations

import os
import shutil
from typing import Annotated

import typer

from gpucost.cli.options import ConfigOpt, DeploymentOpt, ProviderOpt, VmArg
from gpucost.cli.output import err_console
from gpucost.config.settings import load_config
from gpucost.errors import InputError


def hand_over(argv: list[str]) -> None:
    """Replace this process with the user's own ssh (`ssh`, `logs`)."""
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
    """Open a shell on a VM (or a listed GPU host) with the managed key and its pinned host key.

    Example: gpucost ssh vm3 -- hostname
    """
    from gpucost.remote.commands import host_name, ssh_argv
    from gpucost.remote.hostkeys import HostKeyStore
    from gpucost.state import StateDir

    config = load_config(config_file, deployment=deployment, provider=provider)
    name = host_name(vm, config)
    if forget_host_key:
        HostKeyStore(StateDir.of(config)).forget(name)
        err_console.print(f"forgot the pinned host key of {name}")
        return
    hand_over(ssh_argv(config, name, list(ctx.args)))
