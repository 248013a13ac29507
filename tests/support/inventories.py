"""A running four-VM inventory with fixed addresses (and, if asked, a listed GPU host),
for plan and verify tests."""

from __future__ import annotations

from gpucost.inventory import DEFAULT_ROLES, Host, Inventory

IPS = {"vm1": "10.0.0.11", "vm2": "10.0.0.12", "vm3": "10.0.0.13", "vm4": "10.0.0.14"}


GPU_HOST = Host(
    name="gpu-1", role="gpu", provider="existing", state="running",
    private_ip="192.0.2.50", public_ip="192.0.2.50", ssh_host_keys=("ssh-ed25519 AAAA",),
)  # fmt: skip
"""A listed GPU host, outside the VMs' subnet."""


def inventory(state: str = "running", *, gpu_hosts: tuple[Host, ...] = ()) -> Inventory:
    hosts = tuple(
        Host(name=vm, role=role, provider="test", state=state, private_ip=IPS[vm],
             public_ip=f"198.51.100.{i}")
        for i, (vm, role) in enumerate(DEFAULT_ROLES.items(), 1)
    )  # fmt: skip
    return Inventory(deployment="t", provider="test", hosts=hosts + gpu_hosts)
