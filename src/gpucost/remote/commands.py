"""`ssh`, `logs` and `produce` on a running deployment, as library calls."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from gpucost.config.settings import GpucostConfig
from gpucost.errors import GpucostError, InputError
from gpucost.inventory import GPU_ROLE, VM_NAMES, Inventory, Role
from gpucost.remote import lifecycle
from gpucost.remote.deploy import connect
from gpucost.remote.hostkeys import HostKeyStore, pin_published
from gpucost.remote.role_steps import PRODUCER, producers_step
from gpucost.remote.runner import run_step
from gpucost.remote.ssh import Connection, Result
from gpucost.state import StateDir

SERVICES: Final = {
    "processor": "docker logs {follow} --tail 200 gpucost-processor",
    "producer": "docker logs {follow} --tail 200 gpucost-producer-1",
    "agent": "docker logs {follow} --tail 200 gpucost-agent",
    "kafka": "journalctl --no-pager -n 200 {follow} -u kafka",
    "zookeeper": "journalctl --no-pager -n 200 {follow} -u zookeeper",
    "mongodb": "journalctl --no-pager -n 200 {follow} -u mongod",
    "secantusdb": "journalctl --no-pager -n 200 {follow} -u secantusdb",
    "sshd": "journalctl --no-pager -n 200 {follow} -u ssh",
    "ufw": "journalctl --no-pager -n 200 {follow} -k --grep UFW",
}
DEFAULT_SERVICE: Final = {
    "kafka-zk": "kafka",
    "processor": "processor",
    "producers": "producer",
    "gpu": "agent",
}


class ProduceFailed(GpucostError):
    """A producer run on the producers' VM did not deliver every event."""


def running_inventory(config: GpucostConfig) -> Inventory:
    inventory = lifecycle.status(config)
    if not inventory.running:
        raise GpucostError(
            f"deployment {config.deployment} is not running on {config.provider}",
            hint="run `gpucost up` (or `gpucost status`)",
        )
    return inventory


def host_name(name: str, config: GpucostConfig) -> str:
    """A VM (vm1..vm4) or a GPU host listed in `[[gpu_hosts]]`."""
    known = (*VM_NAMES, *(h.name for h in config.gpu_hosts))
    if name in known:
        return name
    raise InputError(f"unknown host {name!r}", hint="one of " + ", ".join(known))


def role_of(config: GpucostConfig, name: str) -> Role:
    """The role of a VM by the settings; a listed GPU host's is `gpu`."""
    for vm in VM_NAMES:
        if vm == name:
            return config.role_of(vm)
    return GPU_ROLE


def ssh_argv(config: GpucostConfig, vm: str, command: Sequence[str] = ()) -> list[str]:
    """The system `ssh` command line for a VM: the managed key only, and its
    pinned host key (pinned now through paramiko if this is the first visit)."""
    inventory = running_inventory(config)
    host = inventory.host(vm)
    store = HostKeyStore(StateDir.of(config))
    address = host.public_ip or host.private_ip or ""
    pinned = store.get(vm)
    if pinned is None or not pinned.applies_to(host.instance_id):
        # The provider's published key, else a first paramiko visit that checks
        # the offered key against the published fingerprints.
        pinned = pin_published(store, vm, address, host.instance_id, host.ssh_host_keys)
        if pinned is None:
            connect(config, inventory, vm, retry_for=30).close()
            pinned = store.get(vm)
    known = store.write_known_hosts([(vm, host.ssh_port)])
    alias = pinned.alias(vm) if pinned is not None else vm
    argv = [
        "ssh", "-i", str(config.private_key), "-p", str(host.ssh_port),
        "-o", "IdentitiesOnly=yes", "-o", "PasswordAuthentication=no",
        # Known hosts keyed by the instance, not its IP: a stopped and started
        # instance comes back on another address with the same key.
        "-o", f"HostKeyAlias={alias}",
        "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
        "-o", "GlobalKnownHostsFile=/dev/null",
        f"{host.ssh_user}@{address}",
    ]  # fmt: skip
    if command:
        argv += ["--", *command]
    return argv


def logs_argv(config: GpucostConfig, vm: str, service: str | None, follow: bool) -> list[str]:
    """`ssh` running the log reader of a service (the host's main one by default)."""
    role = role_of(config, vm)
    if service is None:
        service = DEFAULT_SERVICE.get(role) or (
            "secantusdb" if config.mongodb.server == "secantusdb" else "mongodb"
        )
    if service not in SERVICES:
        raise InputError(f"unknown service {service!r}", hint="one of " + ", ".join(SERVICES))
    reader = SERVICES[service].format(follow="--follow" if follow else "")
    return ssh_argv(config, vm, ["sudo", "-n", *shlex.split(reader)])


def set_producers_rate(config: GpucostConfig, rate: float, replicas: int) -> str:
    """Re-run the producers step with another rate and replica count.
    The next `gpucost up` goes back to the settings' `[producers]`."""
    inventory = running_inventory(config)
    changed = config.model_copy(
        update={
            "producers": config.producers.model_copy(update={"rate": rate, "replicas": replicas})
        }
    )
    step = producers_step(inventory, changed)
    vm = config.vm_of("producers")
    conn = connect(config, inventory, vm)
    try:
        workdir = conn.run("cd ~/.gpucost && pwd").stdout.strip()
        return run_step(conn, step, workdir, {})
    finally:
        conn.close()


def one_off_mark(vm: str, replica: int, replicas: int, mark: str | None) -> str:
    """The `producer` field of one one-off producer's events. Inside a container the
    producer's pid is always 1, so its default name would be the same for every
    replica: each gets its own. A caller's mark is kept as given for one replica."""
    if mark is None:
        return f"gpucost-producer@{vm}:once-{replica + 1}"
    return mark if replicas == 1 else f"{mark}-{replica + 1}"


def produce_once(
    conn: Connection,
    image: str,
    *,
    rate: float,
    count: int | None,
    duration: float | None,
    mark: str | None = None,
    replicas: int = 1,
) -> list[dict[str, Any]]:
    """Run `replicas` one-off producer containers to completion on the VM;
    their JSON summaries (one per container)."""
    flags = ["--rate", repr(rate)]
    if count is not None:
        flags += ["--count", str(count)]
    if duration is not None:
        flags += ["--duration", repr(duration)]
    prefix = (
        f"docker run --rm --network host --env-file /etc/gpucost/producer.env {shlex.quote(image)} "
        f"{PRODUCER} " + " ".join(shlex.quote(f) for f in flags)
    )
    limit = (duration or 0) + (count or 0) / rate + 120

    def one(replica: int) -> Result:
        name = one_off_mark(conn.vm, replica, replicas, mark)
        return conn.run(f"{prefix} --mark {shlex.quote(name)}", sudo=True, timeout=limit)

    with ThreadPoolExecutor(max_workers=replicas) as pool:
        results = list(pool.map(one, range(replicas)))
    summaries = []
    for result in results:
        if not result.ok:
            raise ProduceFailed(f"producer on {conn.vm} exited {result.rc}:\n{result.tail(8)}")
        summaries.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return summaries


def produce(
    config: GpucostConfig,
    *,
    rate: float,
    count: int | None = None,
    duration: float | None = None,
    replicas: int = 1,
) -> list[dict[str, Any]] | str:
    """With --count or --duration: one-off producers, their summaries. Without:
    the long-running producers are set to this rate ("changed"/"unchanged")."""
    if count is None and duration is None:
        return set_producers_rate(config, rate, replicas)
    inventory = running_inventory(config)
    conn = connect(config, inventory, config.vm_of("producers"))
    try:
        return produce_once(
            conn, config.images.name, rate=rate, count=count, duration=duration, replicas=replicas
        )
    finally:
        conn.close()
