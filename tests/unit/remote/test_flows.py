"""One port matrix: the security groups, the ufw rules, what `verify` expects and the
table in docs/architecture.md all say exactly what `flows.FLOWS` says."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from gpucost.inventory import DEFAULT_ROLES, GPU_ROLE, ROLES, Inventory
from gpucost.remote.flows import ADMIN, FLOWS, LOOPBACK_ONLY, ZK_PORT, listening_ports, matrix
from gpucost.remote.providers.aws_security import security_matrix
from gpucost.remote.role_steps import allowed_sources
from gpucost.remote.ssh import Result
from gpucost.remote.verify import PROBED_PORTS, expected_open, ports_from_vm
from support.inventories import GPU_HOST, inventory

pytestmark = pytest.mark.unit

Triple = tuple[str, str, int]
"""(source: "admin" or a role, target role, port)."""

ARCHITECTURE = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"
ADMIN_CIDR = "203.0.113.7/32"
GPU_CIDR = "192.0.2.50/32"


def test_the_matrix_is_the_design() -> None:
    assert matrix() == {
        *((ADMIN, role, 22) for role in ROLES),
        (ADMIN, "processor", 8080),
        ("processor", "kafka-zk", 9092),
        ("producers", "kafka-zk", 9092),
        ("gpu", "kafka-zk", 9092),
        ("processor", "mongodb", 27017),
    }
    assert LOOPBACK_ONLY == {"kafka-zk": (ZK_PORT,)}


def test_security_groups_are_the_matrix() -> None:
    seen: set[Triple] = set()
    cidr_of = {ADMIN_CIDR: ADMIN, GPU_CIDR: "gpu"}
    for role, rules in security_matrix(ADMIN_CIDR, (GPU_CIDR,)).items():
        for rule in rules:
            assert rule.from_group or rule.source in cidr_of, rule
            seen.add((rule.source if rule.from_group else cidr_of[rule.source], role, rule.port))
    assert seen == matrix()


def test_ufw_rules_are_the_matrix() -> None:
    inv = inventory(gpu_hosts=(GPU_HOST,))
    role_of_ip = {h.private_ip: h.role for h in inv.hosts}
    seen: set[Triple] = set()
    for vm, rules in allowed_sources(inv).items():
        if inv.host(vm).role == "gpu":
            continue  # gpucost adds no firewall to a GPU host you own
        for port, source in rules:
            seen.add((ADMIN if source == ADMIN else role_of_ip[source], inv.host(vm).role, port))
    assert seen == matrix()


def test_verify_expects_the_matrix() -> None:
    inv = inventory(gpu_hosts=(GPU_HOST,))
    seen: set[Triple] = set()
    for source in (ADMIN, *(h.name for h in inv.hosts)):
        for target in inv.hosts:
            if target.role == "gpu":
                continue  # not probed: its firewall is not gpucost's
            if source == target.name:
                continue  # a host reaching itself is loopback, not the firewall
            for port in PROBED_PORTS:
                if expected_open(inv, source, target, port):
                    role = ADMIN if source == ADMIN else inv.host(source).role
                    seen.add((role, target.role, port))
    assert seen == matrix()
    assert set(PROBED_PORTS) >= {f.port for f in FLOWS} | {ZK_PORT}


def documented_matrix() -> set[Triple]:
    """The "Firewall matrix" table: rows are targets, columns sources, cells ports."""
    text = ARCHITECTURE.read_text()
    lines = text[text.index("### Firewall matrix") :].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next(i for i, line in enumerate(lines[first:], first) if not line.startswith("|"))
    header, _rule, *body = lines[first:end]
    role_of_vm = dict(DEFAULT_ROLES)

    def party(cell: str) -> str:
        """ "admin CIDR", "vm1 kafka-zk" (a VM and its default role) or a bare role
        (for roles on hosts beyond the four VMs)."""
        cell = cell.strip()
        if cell.startswith("admin"):
            return ADMIN
        first = cell.split()[0]
        if first not in role_of_vm:
            assert first in (*ROLES, GPU_ROLE), f"{cell!r} names neither a VM nor a role"
            return first
        role = role_of_vm[first]
        assert role in cell, f"{cell!r}: {first} is {role} by default"
        return role

    sources = [party(c) for c in header.strip("|").split("|")[1:]]
    found: set[Triple] = set()
    for line in body:
        target, *cells = line.strip("|").split("|")
        for source, cell in zip(sources, cells, strict=True):
            found |= {(source, party(target), int(p)) for p in re.findall(r"\d+", cell)}
    return found


def test_architecture_doc_table_is_the_matrix() -> None:
    assert documented_matrix() == matrix()


class ProbingHost:
    """A host that answers verify's probe script as ufw with `allowed_sources` would:
    a port is open to a connection whose address falls in one of its rules."""

    def __init__(self, inv: Inventory, vm: str) -> None:
        self.inv, self.vm = inv, vm

    def run(self, script: str, **_: object) -> Result:
        lines = []
        me = ipaddress.ip_address(self.inv.host(self.vm).private_ip or "")
        rules = allowed_sources(self.inv)
        for probe in script.split("for t in ", 1)[1].split("; do", 1)[0].split():
            name, _address, port = probe.split(":")
            target = self.inv.host(name)
            listening = int(port) in listening_ports(target.role)
            allowed = name == self.vm or any(
                p == int(port) and src != ADMIN and me in ipaddress.ip_network(src)
                for p, src in rules[name]
            )
            lines.append(f"{name} {port} {'open' if listening and allowed else 'closed'}")
        return Result(0, "\n".join(lines) + "\n", "")


@pytest.mark.parametrize("source_cidr", [None, "192.0.2.48/28"])
def test_verify_probes_the_vms_from_every_host_gpu_hosts_too(source_cidr: str | None) -> None:
    inv = inventory(gpu_hosts=(GPU_HOST.model_copy(update={"source_cidr": source_cidr}),))
    for host in inv.hosts:
        check = ports_from_vm(inv, ProbingHost(inv, host.name))  # type: ignore[arg-type]
        assert check.ok, check
