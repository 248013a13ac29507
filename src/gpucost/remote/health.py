"""Each VM's services as the VM itself sees them: what `gpucost status` adds to
the inventory once the pipeline is deployed.

One SSH command per VM, side by side: `systemctl is-active` for systemd units,
`docker inspect` (health when the image has a check, else the state) for
containers, and the processor's own `/health` on the VM's loopback. A VM that
cannot be reached reports why instead of failing `status`.
"""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from gpucost.config.settings import GpucostConfig
from gpucost.inventory import Host, Inventory, Role
from gpucost.remote.deploy import connect
from gpucost.remote.flows import API_PORT
from gpucost.remote.role_steps import PROCESSOR, PRODUCER
from gpucost.state import SECRETS_FILE, StateDir

Health = dict[str, str]
"""service -> `active`, `healthy`, `running`, or what is wrong (`inactive`, `exited`, ...)."""

HEALTHY: Final = frozenset({"active", "healthy", "running"})
_INSPECT: Final = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"


API_HEALTH: Final = "api /health"
_HTTP: Final = (
    f"curl -fsS -o /dev/null -m 5 http://127.0.0.1:{API_PORT}/health "
    ">/dev/null 2>&1 && echo healthy || echo failing"
)


def services_of(config: GpucostConfig, role: Role) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(systemd units, containers) the deploy runs on a VM of this role."""
    units: tuple[str, ...] = ("ssh",)
    if role == "kafka-zk":
        return (*units, "zookeeper", "kafka"), ()
    if role == "mongodb":
        return (*units, "secantusdb" if config.mongodb.server == "secantusdb" else "mongod"), ()
    if role == "processor":
        return (*units, "docker"), (PROCESSOR,)
    replicas = config.producers.replicas
    return (*units, "docker"), tuple(f"{PRODUCER}-{i}" for i in range(1, replicas + 1))


def probe_command(units: tuple[str, ...], containers: tuple[str, ...], api: bool = False) -> str:
    """Shell that prints `name state` per service; exits 0 whatever the states."""
    lines = [
        f'printf "%s %s\\n" {u} "$(systemctl is-active {u} 2>/dev/null || true)"' for u in units
    ]
    lines += [
        f'printf "%s %s\\n" {c} "$(docker inspect -f {shlex.quote(_INSPECT)} {c} '
        '2>/dev/null || echo absent)"'
        for c in containers
    ]
    if api:
        lines.append(f'printf "%s %s\\n" {shlex.quote(API_HEALTH)} "$({_HTTP})"')
    return "; ".join(lines)


def parse(output: str, expected: tuple[str, ...]) -> Health:
    seen: Health = {}
    for line in output.splitlines():
        for name in expected:  # a name may hold a space ("api /health"); states do not
            if line == name or line.startswith(f"{name} "):
                seen[name] = line[len(name) :].strip() or "unknown"
    return {name: seen.get(name, "unknown") for name in expected}


def _one(config: GpucostConfig, inventory: Inventory, host: Host) -> Health:
    if host.state != "running":
        return {}
    units, containers = services_of(config, host.role)
    api = host.role == "processor"
    try:
        conn = connect(config, inventory, host.name, retry_for=5)
    except Exception as exc:  # status shows why; it does not fail
        return {"ssh": f"unreachable: {str(exc).splitlines()[0][:120]}"}
    try:
        result = conn.run(probe_command(units, containers, api), sudo=True, timeout=30, quiet=True)
    finally:
        conn.close()
    if not result.ok:
        return {"ssh": f"probe failed (exit {result.rc})"}
    return parse(result.stdout, (*units, *containers, *((API_HEALTH,) if api else ())))


def deployed(config: GpucostConfig) -> bool:
    """Whether the deploy over SSH ran from here: it made the passwords.
    (The providers write the inventory already; `--infra-only` hosts have no
    services to ask about, and are not contacted.)"""
    return StateDir.of(config).file(SECRETS_FILE).is_file()


def service_health(config: GpucostConfig, inventory: Inventory) -> dict[str, Health]:
    """Each running VM's services; {} for a VM that is not running."""
    with ThreadPoolExecutor(max_workers=max(1, len(inventory.hosts))) as pool:
        found = pool.map(lambda h: _one(config, inventory, h), inventory.hosts)
        return {h.name: health for h, health in zip(inventory.hosts, found, strict=True)}
