"""A GPU host "the user already has", for the end-to-end tests: one more systemd host
like the local provider's VMs, on the deployment's network, that gpucost did not make.

It is made the way a cloud would hand one over: cloud-init at first boot, from a
NoCloud seed with the admin's key and no user data of gpucost's, makes the `ubuntu`
login and the host keys, and prints the keys to its console. The test then lists it in
`[[gpu_hosts]]` with the host key read from that console, so the deploy pins it as it
would pin a key the user copied from their own machine. It carries the deployment's
label, so `gpucost down` removes it with the rest.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass

from gpucost.remote.cloud_config import nocloud_meta_data
from gpucost.remote.console import parse_console
from gpucost.remote.providers import local_commands as cmd
from gpucost.remote.providers.local import seed_host
from gpucost.remote.providers.local_engine import Docker


@dataclass(frozen=True)
class GpuHost:
    container: str
    address: str
    host_key: str
    """ "type base64", as `[[gpu_hosts]] host_key` wants it."""


def _docker(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=timeout)


def _banner(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=1) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def make_gpu_host(deployment: str, subnet: str, public_key: str, slot: str = "vm9") -> GpuHost:
    """Boot the host on the deployment's network (made by `up --infra-only`)."""
    names = cmd.LocalNames(deployment, subnet)
    # `slot` only places it: the names and the address of a ninth host of the subnet.
    _docker(cmd.volume_create(names, slot))  # type: ignore[arg-type]
    made = _docker(cmd.create_host(names, slot, "gpu")).stdout.strip()  # type: ignore[arg-type]
    container, address = names.container(slot), names.ip(slot)  # type: ignore[arg-type]
    meta_data = nocloud_meta_data(made[:12], slot, public_key)
    # No user data of gpucost's: the user made this host, not gpucost.
    seed_host(Docker(), container, {"meta-data": meta_data, "user-data": "#cloud-config\n{}\n"})
    _docker(cmd.start(container))
    deadline = time.monotonic() + 120
    while not _banner(address):
        if time.monotonic() > deadline:
            raise AssertionError(f"{container} did not boot to sshd")
        time.sleep(0.5)
    while (printed := parse_console(_docker(cmd.console(container)).stdout)) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{container} printed no host keys to its console")
        time.sleep(0.5)
    key_type, blob = next(k for k in printed.keys if k[0] == "ssh-ed25519")
    return GpuHost(container, address, f"{key_type} {blob}")
