"""The docker command lines of the local provider, built as data.

Nothing here runs anything: each function returns an argv list, so unit tests
assert on exactly what would run (as Kamal's `commands/` do), and the provider
is the only place that executes them.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass
from typing import Final

from gpucost.inventory import Role, VmName
from gpucost.remote import local_defaults

LABEL_DEPLOYMENT: Final = "gpucost.deployment"
LABEL_ROLE: Final = "gpucost.role"
LABEL_VM: Final = "gpucost.vm"
LABEL_IMAGE: Final = "gpucost.image"
"""On the images this provider built: which recipe (host or python) and version."""

HOST_IMAGE: Final = "gpucost-host:bookworm"
PYTHON_IMAGE: Final = local_defaults.PYTHON_IMAGE
ADMIN_USER: Final = "ubuntu"
"""The login of Canonical's images, so the local hosts are logged in to as the AWS ones are."""
SEED_DIR: Final = "var/lib/cloud/seed/nocloud"
"""Where cloud-init's NoCloud datasource looks for a seed on the root filesystem."""
FIRST_HOST_OCTET: Final = 11
"""vm1 is .11, vm2 .12, ...: fixed, so firewall rules and docs can name them."""

# Why each flag: systemd as PID 1 needs the cgroup tree writable and /run on
# tmpfs; ufw and an inner dockerd need NET_ADMIN, iptables and device nodes.
# `--privileged` would grant all of that but fails on these kernels (the
# bounding set lacks CAP_SYS_RESOURCE, so "unable to apply caps"); this is
# --privileged minus that one capability, with the confinement lifted by name.
SYSTEMD_FLAGS: Final[tuple[str, ...]] = (
    "--cap-add=ALL",
    "--cap-drop=SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--device-cgroup-rule=a *:* rmw",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
    # systemd shuts down cleanly on SIGRTMIN+3, not on docker's SIGTERM.
    "--stop-signal",
    "SIGRTMIN+3",
    # systemd reads this to adapt to life in a container (no udev, no getty).
    "--env",
    "container=docker",
)


@dataclass(frozen=True)
class LocalNames:
    """Names and addresses of one deployment's local resources."""

    deployment: str
    subnet: str

    @property
    def network(self) -> str:
        return f"gpucost-{self.deployment}"

    def container(self, vm: VmName) -> str:
        return f"gpucost-{self.deployment}-{vm}"

    def volume(self, vm: VmName) -> str:
        return f"gpucost-{self.deployment}-{vm}-docker"

    @property
    def gateway(self) -> str:
        """This machine's address on the network: what the hosts see as "admin"."""
        return str(ipaddress.ip_network(self.subnet)[1])

    def ip(self, vm: VmName) -> str:
        index = int(vm.removeprefix("vm")) - 1
        return str(ipaddress.ip_network(self.subnet)[FIRST_HOST_OCTET + index])

    @property
    def label(self) -> str:
        return f"{LABEL_DEPLOYMENT}={self.deployment}"


def docker_info() -> list[str]:
    return ["docker", "info", "--format", "{{.ServerVersion}}"]


def network_inspect(names: LocalNames) -> list[str]:
    return ["docker", "network", "inspect", names.network]


def network_create(names: LocalNames) -> list[str]:
    return [
        "docker",
        "network",
        "create",
        "--driver",
        "bridge",
        "--subnet",
        names.subnet,
        "--gateway",
        names.gateway,
        "--label",
        names.label,
        names.network,
    ]


def network_rm(name: str) -> list[str]:
    return ["docker", "network", "rm", name]


def volume_create(names: LocalNames, vm: VmName) -> list[str]:
    return ["docker", "volume", "create", "--label", names.label, names.volume(vm)]


def volume_rm(name: str) -> list[str]:
    return ["docker", "volume", "rm", "--force", name]


def create_host(names: LocalNames, vm: VmName, role: Role, image: str = HOST_IMAGE) -> list[str]:
    """A host, made but not started (its NoCloud seed goes in first): systemd as
    PID 1 on a fixed IP, /var/lib/docker on a volume (an inner dockerd cannot
    put overlay2 on the container's own overlay). Prints the container id."""
    return [
        "docker",
        "create",
        # A terminal as the console: systemd points its own output at /dev/null, so
        # what the host prints to its console (cloud-init's host-key blocks, as an
        # EC2 console shows them) reaches `docker logs` only through /dev/console,
        # which needs a tty.
        "--tty",
        "--name",
        names.container(vm),
        "--hostname",
        vm,
        "--network",
        names.network,
        "--ip",
        names.ip(vm),
        "--label",
        names.label,
        "--label",
        f"{LABEL_ROLE}={role}",
        "--label",
        f"{LABEL_VM}={vm}",
        *SYSTEMD_FLAGS,
        "-v",
        f"{names.volume(vm)}:/var/lib/docker",
        image,
        "/sbin/init",
    ]


def copy_seed(container: str, seed_dir: str) -> list[str]:
    """The host's NoCloud seed (a directory holding meta-data and user-data)
    into the made, not yet started, container: cloud-init reads it at first boot."""
    return ["docker", "cp", seed_dir, f"{container}:/{SEED_DIR}"]


def start(container: str) -> list[str]:
    return ["docker", "start", container]


def rm_container(container: str) -> list[str]:
    return ["docker", "rm", "--force", "--volumes", container]


def list_containers(deployment: str) -> list[str]:
    """Every container of the deployment, running or not, as JSON lines."""
    return [
        "docker",
        "ps",
        "--all",
        "--no-trunc",
        "--filter",
        f"label={LABEL_DEPLOYMENT}={deployment}",
        "--format",
        "{{json .}}",
    ]


def list_container_names(deployment: str) -> list[str]:
    return [*list_containers(deployment)[:-2], "--format", "{{.Names}}"]


def inspect(*objects: str) -> list[str]:
    return ["docker", "inspect", *objects]


def list_volumes(deployment: str) -> list[str]:
    return [
        "docker",
        "volume",
        "ls",
        "--quiet",
        "--filter",
        f"label={LABEL_DEPLOYMENT}={deployment}",
    ]


def list_networks(deployment: str) -> list[str]:
    return [
        "docker",
        "network",
        "ls",
        "--quiet",
        "--format",
        "{{.Name}}",
        "--filter",
        f"label={LABEL_DEPLOYMENT}={deployment}",
    ]


def image_inspect(image: str) -> list[str]:
    return ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", image]


def image_rm(image: str) -> list[str]:
    return ["docker", "image", "rm", image]


def system_state(container: str) -> list[str]:
    # Exits non-zero while "starting" or "degraded": the provider reads stdout.
    return ["docker", "exec", container, "systemctl", "is-system-running"]


LOCAL_CA_DIR: Final = "/usr/local/share/ca-certificates"


def trust_script(certificates: dict[str, str]) -> str:
    """What cloud-init's `ca_certs` does: the CAs this machine trusts beyond
    the distribution's (a TLS-inspecting egress proxy, a company CA), so the
    hosts reach HTTPS package indexes as this machine does. pip is pointed at
    the system bundle because a venv's pip would otherwise use its own."""
    lines = ["set -eu", "changed=0"]
    for name, pem in sorted(certificates.items()):
        target = shlex.quote(f"{LOCAL_CA_DIR}/gpucost-{name}")
        lines += [
            f"want={shlex.quote(pem.strip())}",
            f'if [ "$(cat {target} 2>/dev/null)" != "$want" ]; then',
            f'  printf "%s\\n" "$want" > {target}; changed=1',
            "fi",
        ]
    pip_conf = "[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n"
    lines += [
        f'if [ ! -f /etc/pip.conf ]; then printf "{pip_conf}" > /etc/pip.conf; changed=1; fi',
        'if [ "$changed" = 1 ]; then update-ca-certificates >/dev/null; echo changed;'
        " else echo unchanged; fi",
    ]
    return "\n".join(lines)


def console(container: str) -> list[str]:
    """The host's console output: what its PID 1 printed since it was made."""
    return ["docker", "logs", container]


def exec_script(container: str, script: str) -> list[str]:
    return ["docker", "exec", container, "sh", "-c", script]
