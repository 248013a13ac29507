"""What `verify` expects of the port matrix, from the admin host and each VM."""

from __future__ import annotations

from gpucost.remote.verify import ADMIN, PROBED_PORTS, expected_open
from support.inventories import inventory


def open_ports(source: str) -> set[tuple[str, int]]:
    inv = inventory()
    return {
        (h.name, p) for h in inv.hosts for p in PROBED_PORTS if expected_open(inv, source, h, p)
    }


def test_admin_reaches_ssh_everywhere_and_the_api_only() -> None:
    assert open_ports(ADMIN) == {("vm1", 22), ("vm2", 22), ("vm3", 22), ("vm4", 22), ("vm3", 8080)}


def test_processor_reaches_kafka_and_mongodb() -> None:
    assert open_ports("vm3") == {("vm1", 9092), ("vm2", 27017), ("vm3", 22), ("vm3", 8080)}


def test_producers_reach_kafka_only() -> None:
    assert open_ports("vm4") == {("vm1", 9092), ("vm4", 22)}


def test_zookeeper_is_never_reachable() -> None:
    for source in (ADMIN, "vm1", "vm2", "vm3", "vm4"):
        assert not {p for _, p in open_ports(source)} & {2181}
