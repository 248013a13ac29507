"""`up`, `down`, `status` as library calls: provider first, then the deploy stage.

The CLI calls these; so can any Python program. The deploy over SSH plugs in
with `set_deploy_stage` and receives the Inventory the provider returned.
"""

from __future__ import annotations

from collections.abc import Callable

from gpucost.config.settings import GpucostConfig
from gpucost.config.support import check_settings
from gpucost.errors import GpucostError
from gpucost.inventory import Inventory
from gpucost.remote.providers import (
    Plan,
    Progress,
    Resource,
    get_provider,
    no_progress,
)


class DeployUnavailable(GpucostError):
    """`up` was asked to deploy, and no deploy stage is plugged in."""


class AdminAccessChanged(GpucostError):
    """The firewall admits another admin address than the settings name, and
    the user did not agree to move it."""


DeployStage = Callable[[GpucostConfig, Inventory, Progress], None]
_deploy_stage: DeployStage | None = None


def set_deploy_stage(stage: DeployStage | None) -> None:
    """Plug in the stage that installs the roles over SSH on the hosts."""
    global _deploy_stage
    _deploy_stage = stage


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
    if _deploy_stage is None:
        raise DeployUnavailable(
            "the deploy over SSH is not available yet; the hosts above are up",
            hint="`gpucost up --infra-only` converges the cloud resources only",
        )
    # Never an SSH connection before the provider vouched for the host keys.
    inventory = get_provider(config.provider).ready(config, inventory, progress)
    _deploy_stage(config, inventory, progress)
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
    return get_provider(config.provider).inventory(config)
