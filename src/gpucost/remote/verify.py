"""`gpucost verify`: prove a running deployment works and is closed as designed.

Each check is one row: health, marked events arriving exactly once with their
costs, fresh GPU metrics, the port matrix from this machine and from each VM,
no password logins, and a database that refuses anonymous commands.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Final

from gpucost.config.settings import GpucostConfig
from gpucost.inventory import GPU_ROLE, Host, Inventory
from gpucost.remote.commands import produce_once, running_inventory
from gpucost.remote.deploy import connect
from gpucost.remote.flows import ADMIN, API_PORT, MONGO_PORT, every_port, listening_ports
from gpucost.remote.providers.base import Progress, ProgressEvent, no_progress
from gpucost.remote.role_steps import agent_nodes, allowed_sources
from gpucost.remote.ssh import Connection, SshConnection, auth_methods, probe_port

PROBED_PORTS: Final = every_port()


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


def expected_open(inventory: Inventory, source: str, target: Host, port: int) -> bool:
    """Whether the design lets `source` (a VM name or "admin") reach target:port."""
    if port not in listening_ports(target.role):
        return False
    if source == target.name:
        return True  # a VM's own address is loopback traffic, which ufw lets through
    if source == ADMIN:
        source_ip: str | None = ADMIN
    else:
        origin = inventory.host(source)
        source_ip = origin.source_cidr or origin.private_ip
    return (port, source_ip) in allowed_sources(inventory)[target.name]


def vms(inventory: Inventory) -> list[Host]:
    """The hosts whose firewall gpucost set: every one but the listed GPU hosts."""
    return [h for h in inventory.hosts if h.role != GPU_ROLE]


def _matrix_check(inventory: Inventory, source: str, seen: dict[tuple[str, int], bool]) -> Check:
    wrong = []
    for host in vms(inventory):
        for port in PROBED_PORTS:
            want = expected_open(inventory, source, host, port)
            got = seen[(host.name, port)]
            if want != got:
                wrong.append(f"{host.name}:{port} {'open' if got else 'closed'}")
    return Check(
        f"ports from {source}",
        not wrong,
        "as designed" if not wrong else "unexpected: " + ", ".join(wrong),
    )


def ports_from_admin(inventory: Inventory) -> Check:
    targets = [(h, p) for h in vms(inventory) for p in PROBED_PORTS]
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        opened = list(
            pool.map(lambda t: probe_port(t[0].public_ip or t[0].private_ip or "", t[1]), targets)
        )
    seen: dict[tuple[str, int], bool] = {
        (h.name, p): ok for (h, p), ok in zip(targets, opened, strict=True)
    }
    return _matrix_check(inventory, ADMIN, seen)


def ports_from_vm(inventory: Inventory, conn: Connection) -> Check:
    probes = " ".join(f"{h.name}:{h.private_ip}:{p}" for h in vms(inventory) for p in PROBED_PORTS)
    # All probes at once: a port that ufw drops costs the whole timeout.
    script = (
        f'for t in {probes}; do (IFS=: read -r n a p <<<"$t"; '
        'if timeout 3 bash -c "</dev/tcp/$a/$p" 2>/dev/null; then echo "$n $p open"; '
        'else echo "$n $p closed"; fi) & done; wait'
    )
    result = conn.run(script, timeout=60)
    seen: dict[tuple[str, int], bool] = {}
    for line in result.stdout.splitlines():
        name, port, state = line.split()
        seen[(name, int(port))] = state == "open"
    if len(seen) != len(vms(inventory)) * len(PROBED_PORTS):
        return Check(f"ports from {conn.vm}", False, f"probe failed: {result.tail(3)}")
    return _matrix_check(inventory, conn.vm, seen)


def health(inventory: Inventory) -> Check:
    host = inventory.by_role("processor")
    url = f"http://{host.public_ip or host.private_ip}:{API_PORT}/health"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return Check("processor /health", response.status == 200, f"{url} {response.status}")
    except OSError as exc:
        return Check("processor /health", False, f"{url}: {exc}")


def no_passwords(host: Host) -> Check:
    address = host.public_ip or host.private_ip or ""
    try:
        methods = auth_methods(address, host.ssh_port, host.ssh_user)
    except OSError as exc:
        return Check(f"ssh {host.name} refuses passwords", False, str(exc))
    allowed = {"password", "keyboard-interactive"} & set(methods)
    return Check(f"ssh {host.name} refuses passwords", not allowed, "offers: " + ", ".join(methods))


def mongo_refuses_anonymous(host: Host, conn: SshConnection) -> Check:
    from pymongo import MongoClient
    from pymongo.errors import OperationFailure, PyMongoError

    name = "database refuses anonymous commands"
    with conn.forward_local_port(host.private_ip or "127.0.0.1", MONGO_PORT) as forward:
        client: MongoClient[dict[str, Any]] = MongoClient(
            f"mongodb://127.0.0.1:{forward.port}/?directConnection=true",
            serverSelectionTimeoutMS=5000,
        )
        try:
            client.admin.command("listDatabases")
            return Check(name, False, "listDatabases answered without credentials")
        except OperationFailure as exc:
            return Check(name, exc.code == 13, f"refused (code {exc.code})")
        except PyMongoError as exc:
            return Check(name, False, f"no answer: {exc}")
        finally:
            client.close()


def events_and_metrics(
    config: GpucostConfig, conn: Connection, count: int, agents: tuple[str, ...] = ()
) -> list[Check]:
    """Produce `count` marked events on the producers' VM; find each exactly once,
    costed, in token_usage; a gpu_metrics window newer than two windows; and, for
    each node an agent runs on, a recent window priced from that node's samples."""
    from pymongo import MongoClient

    from gpucost.report.tunnel import deployment_uri

    mark = f"verify-{uuid.uuid4().hex[:12]}"
    summary = produce_once(
        conn, config.images.name, rate=200, count=count, duration=None, mark=mark
    )[0]
    sent = Check("marked events sent", summary.get("acked") == count, f"{summary}")
    deadline = time.monotonic() + 90
    with deployment_uri(config) as uri:
        client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=10000)
        try:
            db = client[config.mongodb.database]
            while True:
                docs = list(
                    db.token_usage.find(
                        {"producer": mark}, {"event_id": 1, "costed": 1, "allocated_cost_usd": 1}
                    )
                )
                costed = [d for d in docs if d.get("costed")]
                if len(costed) >= count or time.monotonic() > deadline:
                    break
                time.sleep(2)
            latest = db.gpu_metrics.find_one(sort=[("window_start", -1)])
            sampled = {
                node: db.gpu_metrics.find_one(
                    {"node": node, "sample_count": {"$gt": 0}}, sort=[("window_start", -1)]
                )
                for node in agents
            }
        finally:
            client.close()
    ids = [d["event_id"] for d in docs]
    once = len(ids) == count and len(set(ids)) == count
    arrived = Check(
        "events arrive exactly once", once, f"{len(set(ids))} distinct of {count}, {len(ids)} docs"
    )
    priced = [d for d in costed if d.get("allocated_cost_usd") is not None]
    with_costs = Check("events have costs", len(priced) == count, f"{len(priced)} of {count}")
    if latest is None:
        fresh = Check("gpu_metrics fresh", False, "no gpu_metrics document")
    else:
        window = float(latest.get("window_s", 10))
        age = time.time() - float(latest["window_start"]) - window
        fresh = Check("gpu_metrics fresh", age <= 2 * window, f"newest window ended {age:.0f}s ago")
    return [sent, arrived, with_costs, fresh] + [
        _samples_check(node, window) for node, window in sampled.items()
    ]


def _samples_check(node: str, window: dict[str, Any] | None) -> Check:
    name = f"GPU samples from {node}"
    if window is None:
        return Check(name, False, "no window priced from this node's samples")
    age = time.time() - float(window["window_start"]) - float(window.get("window_s", 10))
    detail = f"{window['sample_count']} {window.get('source')} samples, window ended {age:.0f}s ago"
    return Check(name, age <= 3 * float(window.get("window_s", 10)), detail)


def verify(
    config: GpucostConfig, *, count: int = 100, progress: Progress = no_progress
) -> list[Check]:
    """Run every check; never raises for a failed check, only for an unreachable VM."""
    inventory = running_inventory(config)
    step: Callable[[str], None] = lambda what: progress(  # noqa: E731
        ProgressEvent("check", what, "waiting")
    )
    checks = []
    step("health and ports from this machine")
    checks.append(health(inventory))
    checks.append(ports_from_admin(inventory))
    checks += [no_passwords(h) for h in vms(inventory)]
    conns: dict[str, SshConnection] = {}
    try:
        for host in inventory.hosts:
            conns[host.name] = connect(config, inventory, host.name, retry_for=30)
        step("ports from each VM")
        with ThreadPoolExecutor(max_workers=4) as pool:
            checks += list(pool.map(lambda c: ports_from_vm(inventory, c), conns.values()))
        db_host = inventory.by_role("mongodb")
        checks.append(mongo_refuses_anonymous(db_host, conns[db_host.name]))
        step(f"{count} marked events")
        checks += events_and_metrics(
            config, conns[config.vm_of("producers")], count, agent_nodes(inventory, config)
        )
    finally:
        for conn in conns.values():
            conn.close()
    return checks


def as_json(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]
