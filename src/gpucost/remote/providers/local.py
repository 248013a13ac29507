"""The local provider: the design's four VMs as systemd containers on this machine.

Each host is a Docker container booted with /sbin/init from a Debian image
built here (no registry), on a user-defined network with a fixed IP. It boots as
an EC2 instance does: cloud-init reads a NoCloud seed holding the deployment's
public key and the very user data the AWS provider sends, makes the `ubuntu`
login, generates the host keys and prints them to the console, where the provider
reads them as it reads GetConsoleOutput on AWS. The deploy over SSH then runs
exactly the steps it runs on AWS. Everything carries the label `gpucost.deployment`, so
`destroy` finds it without local state.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from gpucost.config.settings import GpucostConfig
from gpucost.inventory import ABSENT, Host, Inventory, Role, VmName
from gpucost.remote import local_defaults
from gpucost.remote.cloud_config import nocloud_meta_data, user_data
from gpucost.remote.console import PublishedKeys, parse_console
from gpucost.remote.providers import local_commands as cmd
from gpucost.remote.providers.base import (
    Action,
    Change,
    Plan,
    Progress,
    ProgressEvent,
    Resource,
    no_progress,
)
from gpucost.remote.providers.local_engine import Docker, LocalError, ensure_engine
from gpucost.remote.providers.local_images import (
    PYTHON_RECIPE,
    RECIPES,
    archive_path,
    built,
    ensure_images,
)
from gpucost.state import StateDir

BOOT_TIMEOUT_S: Final = 120.0
_SAFE_NAME: Final = re.compile(r"^[A-Za-z0-9._-]+\.crt$")
BOOTED: Final = frozenset({"running", "degraded"})
"""`degraded`: some unit that has no meaning in a container failed; sshd is what counts."""


class LocalProvider:
    name = "local"

    def __init__(
        self,
        docker: Docker | None = None,
        *,
        cache_dir: Path | None = None,
        boot_timeout: float = BOOT_TIMEOUT_S,
        ca_dir: Path = Path(cmd.LOCAL_CA_DIR),
    ) -> None:
        self._docker = docker or Docker()
        self._ca_dir = ca_dir
        self._cache_dir = cache_dir or local_defaults.cache_dir()
        self._boot_timeout = boot_timeout

    # --- the Provider protocol ------------------------------------------

    def plan(self, config: GpucostConfig) -> Plan:
        config.public_key()  # fails now, in the dry run, rather than half-way through
        names = _names(config)
        changes: list[Change] = []
        engine = self._docker.answers()
        if not engine:
            changes.append(Change(Action.CREATE, "engine", "docker", "install and start dockerd"))
        for recipe in RECIPES:
            ready = engine and built(self._docker, recipe)
            changes.append(
                Change(
                    Action.KEEP if ready else Action.CREATE,
                    "image",
                    recipe.image,
                    "" if ready else "debootstrap bookworm",
                )
            )
        network = self._network(names) if engine else None
        if network is not None:
            _check_subnet(names, network)  # the dry run fails as `up` would
        changes.append(
            Change(Action.CREATE, "network", names.network, names.subnet)
            if network is None
            else Change(Action.KEEP, "network", names.network, names.subnet)
        )
        containers = self._containers(config) if engine else {}
        for vm, role in config.roles.items():
            found = containers.get(vm)
            if found is None:
                action, detail = Action.CREATE, f"{names.ip(vm)} {role}"
            elif found["State"]["Running"]:
                action, detail = Action.KEEP, names.ip(vm)
            else:
                action, detail = Action.UPDATE, "start"
            changes.append(Change(action, "host", names.container(vm), detail))
        return Plan(provider=self.name, deployment=config.deployment, changes=tuple(changes))

    def converge(self, config: GpucostConfig, progress: Progress = no_progress) -> Inventory:
        public_key = config.public_key()
        names = _names(config)
        ensure_engine(self._docker, progress)
        ensure_images(self._docker, self._cache_dir, progress)
        self._ensure_network(names, progress)
        existing = self._containers(config)
        for vm, role in config.roles.items():
            self._ensure_host(names, vm, role, existing.get(vm), public_key, progress)
        self._wait_booted(config, names, progress)
        certificates = self._local_cas()
        if certificates:
            for vm in config.roles:
                self._ensure_trust(names.container(vm), certificates, progress)
        inventory = self.inventory(config)
        # A convenience for the deploy over SSH; `inventory()` always asks Docker.
        StateDir.of(config).write_inventory(inventory)
        return inventory

    def inventory(self, config: GpucostConfig) -> Inventory:
        names = _names(config)
        containers = self._containers(config) if self._docker.answers() else {}
        hosts = []
        for vm, role in config.roles.items():
            found = containers.get(vm)
            if found is None:
                hosts.append(Host(name=vm, role=role, provider=self.name, state=ABSENT))
                continue
            running = bool(found["State"]["Running"])
            ip = _ip_on(found, names.network)
            published = self._published_keys(names.container(vm)) if running else None
            hosts.append(
                Host(
                    name=vm,
                    role=role,
                    provider=self.name,
                    state="running" if running else "stopped",
                    # The id, not the name: a host recreated under the same name is
                    # another machine, and pinned host keys are bound to the id.
                    instance_id=str(found["Id"])[:12],
                    public_ip=ip,
                    private_ip=ip,
                    ssh_user=cmd.ADMIN_USER,
                    ssh_host_key_fingerprints=published.fingerprints if published else (),
                    ssh_host_keys=published.as_lines() if published else (),
                )
            )
        return Inventory(
            deployment=config.deployment,
            provider=self.name,
            hosts=tuple(hosts),
            admin_cidr=f"{names.gateway}/32",
            base_image=PYTHON_RECIPE.image,
            base_image_archive=str(archive_path(self._cache_dir)),
        )

    def ready(
        self, config: GpucostConfig, inventory: Inventory, progress: Progress = no_progress
    ) -> Inventory:
        # The host keys come with the inventory (read from the containers).
        return inventory

    def destroy(self, config: GpucostConfig, progress: Progress = no_progress) -> list[Resource]:
        removed: list[Resource] = []
        if not self._docker.answers():
            if shutil.which("dockerd") is None:
                return removed  # no engine was ever installed: nothing of ours exists
            ensure_engine(self._docker, progress)
        docker, dep = self._docker, config.deployment
        for container in docker.lines(cmd.list_container_names(dep)):
            docker.run(cmd.rm_container(container))
            progress(ProgressEvent("host", container, "deleted"))
            removed.append(Resource("host", container))
        for volume in docker.lines(cmd.list_volumes(dep)):
            docker.run(cmd.volume_rm(volume))
            progress(ProgressEvent("volume", volume, "deleted"))
            removed.append(Resource("volume", volume))
        for network in docker.lines(cmd.list_networks(dep)):
            docker.run(cmd.network_rm(network))
            progress(ProgressEvent("network", network, "deleted"))
            removed.append(Resource("network", network))
        if config.local_remove_images:
            removed += self._remove_images(progress)
        StateDir.of(config).remove()
        return removed

    # --- steps ------------------------------------------------------------

    def _network(self, names: cmd.LocalNames) -> dict[str, Any] | None:
        found = self._docker.inspect(cmd.network_inspect(names))
        return found[0] if found else None

    def _ensure_network(self, names: cmd.LocalNames, progress: Progress) -> None:
        network = self._network(names)
        if network is None:
            result = self._docker.run(cmd.network_create(names), check=False)
            if result.returncode != 0:
                raise LocalError(
                    f"cannot create network {names.network} on {names.subnet}: "
                    f"{result.stderr.strip()}",
                    hint="choose a free subnet with local_subnet in gpucost.toml "
                    "or GPUCOST_LOCAL_SUBNET",
                )
            progress(ProgressEvent("network", names.network, "created", names.subnet))
            return
        _check_subnet(names, network)
        progress(ProgressEvent("network", names.network, "exists", names.subnet))

    def _ensure_host(
        self,
        names: cmd.LocalNames,
        vm: VmName,
        role: Role,
        found: dict[str, Any] | None,
        public_key: str,
        progress: Progress,
    ) -> None:
        container = names.container(vm)
        if found is not None:
            labelled = found["Config"]["Labels"].get(cmd.LABEL_ROLE)
            if labelled != role:
                raise LocalError(
                    f"{container} was made for role {labelled}, the settings say {role}",
                    hint="`gpucost down` first to move roles between hosts",
                )
            if found["State"]["Running"]:
                progress(ProgressEvent("host", container, "exists", names.ip(vm)))
            else:
                self._docker.run(cmd.start(container))
                progress(ProgressEvent("host", container, "updated", "started"))
            return
        self._docker.run(cmd.volume_create(names, vm))
        made = self._docker.run(cmd.create_host(names, vm, role)).stdout.strip()
        try:
            # The id, as the inventory's instance_id: cloud-init's instance identity.
            meta_data = nocloud_meta_data(made[:12], vm, public_key)
            seed_host(self._docker, container, {"meta-data": meta_data, "user-data": user_data()})
            self._docker.run(cmd.start(container))
        except LocalError:
            # Never leave a host that would boot without its seed (no login, no keys).
            self._docker.run(cmd.rm_container(container), check=False)
            raise
        progress(ProgressEvent("host", container, "created", names.ip(vm)))

    def _wait_booted(
        self, config: GpucostConfig, names: cmd.LocalNames, progress: Progress
    ) -> None:
        pending = {vm: names.container(vm) for vm in config.roles}
        progress(
            ProgressEvent("hosts", ", ".join(pending), "waiting", "cloud-init, sshd, host keys")
        )
        deadline = time.monotonic() + self._boot_timeout
        while pending:
            for vm, container in list(pending.items()):
                state = self._docker.run(cmd.system_state(container), check=False).stdout.strip()
                if (
                    state in BOOTED
                    and _ssh_banner(names.ip(vm))
                    and self._published_keys(container) is not None
                ):
                    del pending[vm]
            if pending and time.monotonic() > deadline:
                raise LocalError(
                    f"{', '.join(pending.values())} did not boot (cloud-init, sshd, host "
                    f"keys on the console) within {self._boot_timeout:.0f}s",
                    hint="`docker logs CONTAINER` shows its console, "
                    "`docker exec CONTAINER cloud-init status --long` says why",
                )
            if pending:
                time.sleep(0.5)

    def _local_cas(self) -> dict[str, str]:
        return {
            path.name: path.read_text(encoding="ascii")
            for path in sorted(self._ca_dir.glob("*.crt"))
            if _SAFE_NAME.match(path.name)
        }

    def _ensure_trust(
        self, container: str, certificates: dict[str, str], progress: Progress
    ) -> None:
        result = self._docker.run(cmd.exec_script(container, cmd.trust_script(certificates)))
        changed = "unchanged" not in result.stdout
        progress(
            ProgressEvent(
                "trusted CAs",
                container,
                "updated" if changed else "exists",
                ", ".join(sorted(certificates)),
            )
        )

    def _published_keys(self, container: str) -> PublishedKeys | None:
        """The host keys cloud-init printed to the host's console, in the blocks
        AWS's GetConsoleOutput shows; the deploy over SSH accepts only these."""
        logs = self._docker.run(cmd.console(container), check=False)
        return parse_console(logs.stdout)

    def _containers(self, config: GpucostConfig) -> dict[VmName, dict[str, Any]]:
        ids = [
            json.loads(line)["ID"]
            for line in self._docker.lines(cmd.list_containers(config.deployment))
        ]
        if not ids:
            return {}
        found: dict[VmName, dict[str, Any]] = {}
        for item in self._docker.inspect(cmd.inspect(*ids)):
            vm = item["Config"]["Labels"].get(cmd.LABEL_VM)
            if vm in config.roles:
                found[vm] = item
        return found

    def _remove_images(self, progress: Progress) -> list[Resource]:
        removed = []
        for recipe in RECIPES:
            if built(self._docker, recipe):
                if self._docker.ok(cmd.image_rm(recipe.image)):
                    progress(ProgressEvent("image", recipe.image, "deleted"))
                    removed.append(Resource("image", recipe.image))
                else:
                    progress(ProgressEvent("image", recipe.image, "exists", "still in use"))
        archive = archive_path(self._cache_dir)
        if archive.is_file():
            archive.unlink()
            removed.append(Resource("image archive", str(archive)))
        return removed


def seed_host(docker: Docker, container: str, files: Mapping[str, str]) -> None:
    """Copy a NoCloud seed (`meta-data`, `user-data`, maybe `vendor-data`) into a
    made, not yet started, host: cloud-init reads it at first boot."""
    with tempfile.TemporaryDirectory(prefix="gpucost-seed-") as tmp:
        seed = Path(tmp) / "nocloud"
        seed.mkdir()
        for name, text in files.items():
            (seed / name).write_text(text, encoding="utf-8")
        docker.run(cmd.copy_seed(container, str(seed)))


def _names(config: GpucostConfig) -> cmd.LocalNames:
    return cmd.LocalNames(config.deployment, config.local_subnet)


def _check_subnet(names: cmd.LocalNames, network: dict[str, Any]) -> None:
    subnets = [c.get("Subnet") for c in (network.get("IPAM") or {}).get("Config") or []]
    if names.subnet not in subnets:
        raise LocalError(
            f"network {names.network} has subnet {', '.join(map(str, subnets))}, "
            f"not {names.subnet}",
            hint="`gpucost down` first, or keep the old local_subnet",
        )


def _ip_on(container: dict[str, Any], network: str) -> str | None:
    networks = container.get("NetworkSettings", {}).get("Networks") or {}
    ip = (networks.get(network) or {}).get("IPAddress")
    return str(ip) if ip else None


def _ssh_banner(ip: str, port: int = 22, timeout: float = 1.0) -> bool:
    """sshd answers with its banner: listening is not enough (keys may be in the making)."""
    try:
        with socket.create_connection((ip, port), timeout=timeout) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False
