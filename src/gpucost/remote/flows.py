"""The port matrix: which role may open a TCP connection to which, on what port.

`FLOWS` is the one definition. The AWS security groups
(`providers/aws_security.py`), the ufw rules pushed to each host (`role_steps.allowed_sources`),
what `gpucost verify` expects to find open (`verify.py`) and the table in
docs/architecture.md are all read from it (tests/unit/remote/test_flows.py checks
they agree). A new role's traffic is one more line in `FLOWS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from gpucost.inventory import ROLES, Role

SSH_PORT: Final = 22
API_PORT: Final = 8080
KAFKA_PORT: Final = 9092
MONGO_PORT: Final = 27017
ZK_PORT: Final = 2181

ADMIN: Final = "admin"
"""The admin's address (the settings' `admin_cidr`), as a source."""
EVERY_ROLE: Final = "*"
"""As a target: every host, whatever its role."""

Source = Role | Literal["admin"]


@dataclass(frozen=True)
class Flow:
    """`source` may open TCP connections to `port` on the hosts of `target`."""

    source: Source
    target: Role | Literal["*"]
    port: int
    service: str
    """What answers on the port; names the rule in the cloud's firewall."""

    @property
    def description(self) -> str:
        return f"{self.service} from {self.source}"


FLOWS: Final[tuple[Flow, ...]] = (
    Flow(ADMIN, EVERY_ROLE, SSH_PORT, "ssh"),
    Flow(ADMIN, "processor", API_PORT, "api"),
    Flow("processor", "kafka-zk", KAFKA_PORT, "kafka"),
    Flow("producers", "kafka-zk", KAFKA_PORT, "kafka"),
    Flow("gpu", "kafka-zk", KAFKA_PORT, "kafka"),
    Flow("processor", "mongodb", MONGO_PORT, "mongodb"),
)
"""Everything else is closed: default deny, in the cloud and on every VM. (`gpu` hosts
are yours: gpucost adds no firewall there; they only connect out, to Kafka.)"""

LOOPBACK_ONLY: Final[dict[Role, tuple[int, ...]]] = {"kafka-zk": (ZK_PORT,)}
"""Ports that listen on a host's loopback only: ZooKeeper's one client is the broker
beside it. Reachable from no other host, whatever the firewall says."""


def ingress(role: Role) -> tuple[Flow, ...]:
    """The flows into a host of `role`, in `FLOWS` order."""
    return tuple(f for f in FLOWS if f.target in (role, EVERY_ROLE))


def listening_ports(role: Role) -> frozenset[int]:
    """What listens on the private address of a host of `role`: its ingress ports."""
    return frozenset(f.port for f in ingress(role))


def every_port() -> tuple[int, ...]:
    """Each port of the design, opened or loopback-only: what `verify` probes."""
    loopback = {p for ports in LOOPBACK_ONLY.values() for p in ports}
    return tuple(sorted({f.port for f in FLOWS} | loopback))


def matrix() -> set[tuple[Source, Role, int]]:
    """(source, target role, port) for every allowed flow, `*` expanded: the form
    the tests compare every derived firewall against."""
    return {(f.source, role, f.port) for role in ROLES for f in ingress(role)}
