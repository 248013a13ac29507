"""The local services do what the pipeline needs, and no more than that.

Kafka carries messages through a consumer group, SecantusDB keeps the `gpucost`
user inside its database, and nothing listens beyond loopback.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure
from pymongo.uri_parser import parse_uri

UNAUTHORIZED = 13
ZOOKEEPER_ADMIN_PORT = 8080


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _service_pid(services_dir: Path, name: str) -> int:
    """Pid of a service that scripts/dev/services.sh started; skips when there is none."""
    pidfile = services_dir / name / f"{name}.pid"
    try:
        pid = int(pidfile.read_text())
        Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        pytest.skip(f"no {name} started by scripts/dev/services.sh (external services?)")
    return pid


def _listening_sockets() -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int, int]]:
    """(address, port, pid) of every listening TCP socket, from `ss`."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    sockets = []
    for line in out.splitlines():
        fields = line.split()
        host, _, port = fields[3].rpartition(":")
        host = host.strip("[]").split("%")[0]
        address = ipaddress.ip_address("0.0.0.0" if host == "*" else host)
        sockets.extend((address, int(port), int(pid)) for pid in re.findall(r"pid=(\d+)", line))
    return sockets


def _is_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _non_loopback_addresses() -> list[str]:
    out = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout
    return [
        info["local"]
        for link in json.loads(out)
        for info in link.get("addr_info", [])
        if not ipaddress.ip_address(info["local"]).is_loopback
        and not ipaddress.ip_address(info["local"]).is_link_local
    ]


def _poll(consumer: Consumer, timeout_s: float) -> Message:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            raise AssertionError(f"consumer error: {message.error()}")
        return message
    raise AssertionError(f"no message within {timeout_s}s")


def test_message_round_trip_through_a_consumer_group(kafka_bootstrap, kafka_topic_factory):
    topic = kafka_topic_factory(partitions=1)
    key, value = b"gpu-0", uuid.uuid4().bytes
    errors: list[KafkaError] = []

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    producer.produce(topic, key=key, value=value, on_delivery=lambda err, _: errors.append(err))
    assert producer.flush(10) == 0
    assert errors == [None]

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{topic}.group",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        message = _poll(consumer, timeout_s=30)
        assert (message.topic(), message.key(), message.value()) == (topic, key, value)
        # A synchronous commit proves the group coordinator and its offsets topic work.
        consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()


def test_topic_is_created_with_the_requested_partitions(kafka_bootstrap, kafka_topic_factory):
    topic = kafka_topic_factory(partitions=3)

    meta = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(topic=topic, timeout=10)

    partitions = meta.topics[topic].partitions
    assert sorted(partitions) == [0, 1, 2]
    assert all(p.leader >= 0 and len(p.replicas) == 1 for p in partitions.values())


async def test_app_user_writes_and_reads_its_database(mongodb_uri, mongo_namespace):
    document = {"_id": "window-1", "gpu": "H200", "energy_j": 1234.5, "tokens": 4096}

    async with AsyncMongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
        collection = client[mongo_namespace.database][mongo_namespace.collection("usage")]
        await collection.insert_one(document)

        assert await collection.find_one({"_id": "window-1"}) == document


async def test_app_user_is_refused_on_another_database(mongodb_uri):
    async with AsyncMongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
        with pytest.raises(OperationFailure) as refused:
            await client["not_gpucost"]["probe"].insert_one({"x": 1})

    assert refused.value.code == UNAUTHORIZED


async def test_unauthenticated_client_cannot_list_databases(mongodb_uri):
    host, port = parse_uri(mongodb_uri)["nodelist"][0]

    async with AsyncMongoClient(host, port, serverSelectionTimeoutMS=5000) as client:
        with pytest.raises(OperationFailure) as refused:
            await client.list_database_names()

    assert refused.value.code == UNAUTHORIZED


@pytest.mark.parametrize("service", ["zookeeper", "kafka", "mongo"])
def test_service_listens_on_loopback_only(service, service_env, services_dir):
    pid = _service_pid(services_dir, service)

    sockets = [(address, port) for address, port, owner in _listening_sockets() if owner == pid]

    assert sockets, f"{service} (pid {pid}) listens nowhere"
    assert all(_is_loopback(address) for address, _ in sockets), sockets


def test_zookeeper_admin_server_is_off(service_env, services_dir):
    pid = _service_pid(services_dir, "zookeeper")

    ports = {port for _, port, owner in _listening_sockets() if owner == pid}

    assert ports == {_port(service_env.zookeeper_connect or "")}
    assert ZOOKEEPER_ADMIN_PORT not in ports


def test_zookeeper_is_unreachable_on_non_loopback_addresses(service_env, services_dir):
    _service_pid(services_dir, "zookeeper")
    port = _port(service_env.zookeeper_connect or "")
    addresses = _non_loopback_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback address")

    for address in addresses:
        with pytest.raises((ConnectionRefusedError, TimeoutError)):
            socket.create_connection((address, port), timeout=2).close()
