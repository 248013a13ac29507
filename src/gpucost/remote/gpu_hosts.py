"""GPU hosts you already have (`[[gpu_hosts]]`), as hosts of the inventory.

gpucost does not make them, so no provider lists them: they join the VMs here, in
`status` and in the deploy, with role `gpu`. Their host key comes from the settings,
pinned before the first connection like the keys a provider publishes.
"""

from __future__ import annotations

from gpucost.config.deploy import GpuHostSettings
from gpucost.config.settings import GpucostConfig
from gpucost.inventory import EXISTING, GPU_ROLE, Host, Inventory
from gpucost.remote.console import fingerprint


def gpu_host(settings: GpuHostSettings) -> Host:
    key_type, key = settings.host_key.split()[:2]
    return Host(
        name=settings.name,
        role=GPU_ROLE,
        provider=EXISTING,
        state="running",
        public_ip=settings.address,
        private_ip=settings.address,
        # Unset: the firewall rules on vm1 name its address, as they name the VMs'.
        source_cidr=settings.source_cidr,
        ssh_user=settings.ssh_user,
        ssh_port=settings.ssh_port,
        ssh_host_key_fingerprints=(fingerprint(key),),
        ssh_host_keys=(f"{key_type} {key}",),
    )


def with_gpu_hosts(config: GpucostConfig, inventory: Inventory) -> Inventory:
    """The inventory with the listed GPU hosts after the VMs (once each)."""
    vms = tuple(h for h in inventory.hosts if h.role != GPU_ROLE)
    listed = tuple(gpu_host(h) for h in config.gpu_hosts)
    return inventory.model_copy(update={"hosts": vms + listed})
