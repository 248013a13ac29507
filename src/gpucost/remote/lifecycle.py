"""`up`, `down`, `status` as library calls: the provider makes the hosts, then
the deploy over SSH (`gpucost.remote.deploy`) installs the roles on them.

The CLI calls these; so can any Python program, with no CLI module imported.
"""

from __future__ import annotations

from collections.abc import Callable

from gpucost.config.settings import GpucostConfig
from gpucost.config.support import check_settings
from gpucost.errors import GpucostError
from gpucost.inventory import Inventory
from gpucost.remote.gpu_hosts import with_gpu_hosts
from gpucost.remote.providers import (
    Plan,
    Progress,
    Resource,
    get_provider,
    no_progress,
)


class AdminAccessChanged(GpucostError):
    """The firewall admits another admin address than the settings name, and
    the user did not agree to move it."""


Deployer = Callable[[GpucostConfig, Inventory, Progress], None]


def deploy_over_ssh(config: GpucostConfig, inventory: Inventory, progress: Progress) -> None:
    """The library's own deployer."""
    # Imported on use: paramiko and the role steps are not needed for a plan or `--help`.
    from gpucost.remote.deploy import deploy

    deploy(config, inventory, progress)


_deployer: Deployer = deploy_over_ssh


def use_deployer(deployer: Deployer = deploy_over_ssh) -> None:
    """Swap the SSH half of `up` (tests pass a recorder); no argument restores the library's."""
    global _deployer
    _deployer = deployer


def plan(config: GpucostConfig) -> Plan:
    """What `up` would create or change; makes no change."""
    check_settings(config)
    return get_provider(config.provider).plan(config)


def converge(config: GpucostConfig, progress: Progress = no_progress) -> Inventory:
    """Make the hosts exist (the cloud half of `up`)."""
    check_settings(config)
    return get_provider(config.provider).converge(config, progress)


def deploy(
    config: GpucostConfig, inventory: Inventory, progress: Progress = no_progress
) -> Inventory:
    """Install and wire the roles on the hosts (the SSH half of `up`); the
    inventory deployed to, host keys included."""
    # Never an SSH connection before the provider vouched for the host keys.
    inventory = get_provider(config.provider).ready(config, inventory, progress)
    inventory = with_gpu_hosts(config, inventory)
    _deployer(config, inventory, progress)
    return inventory


def up(
    config: GpucostConfig, *, infra_only: bool = False, progress: Progress = no_progress
) -> Inventory:
    inventory = converge(config, progress)
    if not infra_only:
        inventory = deploy(config, inventory, progress)
    return inventory


def down(config: GpucostConfig, progress: Progress = no_progress) -> list[Resource]:
    return get_provider(config.provider).destroy(config, progress)


def status(config: GpucostConfig) -> Inventory:
    """The VMs as the provider sees them, then the listed GPU hosts."""
    return with_gpu_hosts(config, get_provider(config.provider).inventory(config))
