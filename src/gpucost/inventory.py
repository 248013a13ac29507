"""The hosts a provider made: what `status` shows and what the deploy over SSH consumes.

Providers fill these; steps read them and never ask which provider made a host.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

VmName = Literal["vm1", "vm2", "vm3", "vm4"]
Role = Literal["kafka-zk", "mongodb", "processor", "producers", "gpu"]
"""The four VM roles, and `gpu`: a GPU host the user already has, listed in
`[[gpu_hosts]]`, where gpucost runs only `gpucost-agent`."""

VM_NAMES: Final[tuple[VmName, ...]] = ("vm1", "vm2", "vm3", "vm4")
ROLES: Final[tuple[Role, ...]] = ("kafka-zk", "mongodb", "processor", "producers")
"""The roles of the VMs a provider makes (one each)."""
GPU_ROLE: Final = "gpu"
EXISTING: Final = "existing"
"""The `provider` of a host gpucost did not make: a listed GPU host."""
DEFAULT_ROLES: Final[dict[VmName, Role]] = dict(zip(VM_NAMES, ROLES, strict=True))

ABSENT: Final = "absent"
"""State of a host the settings ask for but the provider has not made (yet)."""


class Host(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    """vm1..vm4 for the VMs a provider made; a GPU host's own name (its node)."""
    role: Role
    provider: str
    state: str
    instance_id: str | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    security_groups: tuple[str, ...] = ()
    availability_zone: str | None = None
    ssh_user: str = "ubuntu"
    ssh_port: int = 22
    ssh_host_key_fingerprints: tuple[str, ...] = ()
    """SHA256 fingerprints the provider vouches for (AWS: from the console output);
    empty: gpucost refuses to connect (it never trusts a key on first use)."""
    source_cidr: str | None = None
    """Where other hosts see this one's connections come from, when that is not its
    private address (a listed GPU host outside the VMs' subnet)."""
    ssh_host_keys: tuple[str, ...] = ()
    """The public host keys themselves ("type base64"), where the provider has them:
    pinned before the first connection."""

    @property
    def exists(self) -> bool:
        return self.state != ABSENT


class Inventory(BaseModel):
    model_config = ConfigDict(frozen=True)

    deployment: str
    provider: str
    region: str | None = None
    key_name: str | None = None
    hosts: tuple[Host, ...] = ()
    admin_cidr: str | None = None
    """Where the hosts see the admin come from, when the provider knows it better
    than the settings (local: this machine's address on the hosts' network)."""
    base_image: str | None = None
    """Base of the images built on the hosts, when the provider supplies one
    (local: no registry, so a Debian python image made here)."""
    base_image_archive: str | None = None
    """A `docker save` tarball of `base_image` on this machine, to upload and load."""

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def by_role(self, role: Role) -> Host:
        for host in self.hosts:
            if host.role == role:
                return host
        raise KeyError(role)

    @property
    def running(self) -> bool:
        """True when every host is up: what the deploy over SSH needs before it starts."""
        return bool(self.hosts) and all(h.state == "running" for h in self.hosts)

    def to_json(self) -> list[dict[str, Any]]:
        """The `status --json` shape: one object per VM, `name` first."""
        return [host.model_dump(mode="json") for host in self.hosts]
