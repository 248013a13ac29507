"""Kafka client settings and small helpers shared by the processor, producer and tests."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

log = logging.getLogger(__name__)

KEY_PARTITIONER = "consistent_random"
"""How every gpucost producer maps a message key to a partition: librdkafka's default
(CRC32 of the key), written down so that no client drifts from it. Token events and GPU
samples are both keyed by node, so with this partitioner and the same partition count a
node's events and samples share a partition number (see runtime/sample_wire.py)."""

DLQ_MAX_VALUE_BYTES = 512 * 1024
"""A dead letter keeps at most this much of the original value: under the 1 MB that the
producer (`message.max.bytes`) and the broker (`max.message.bytes`) accept by default,
headers included. An input topic configured for bigger messages must not make the
dead-letter write fail."""

Headers = list[tuple[str, str | bytes | None]]


def dead_letter_record(
    value: bytes | None,
    *,
    reason: str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
) -> tuple[bytes | None, Headers]:
    """The value and headers of a message's dead letter: the original bytes (cut to
    DLQ_MAX_VALUE_BYTES, saying so), why it was rejected, and where it came from."""
    headers: Headers = [
        ("reason", reason.encode()),
        ("detail", detail[:500].encode()),
        ("source.topic", topic.encode()),
        ("source.partition", str(partition).encode()),
        ("source.offset", str(offset).encode()),
    ]
    if value is not None and len(value) > DLQ_MAX_VALUE_BYTES:
        headers += [("truncated", b"true"), ("original.bytes", str(len(value)).encode())]
        value = value[:DLQ_MAX_VALUE_BYTES]
    return value, headers


def check_bootstrap(value: str) -> str:
    """`value` unchanged if it is `host:port[,host:port]`, else ValueError (a settings
    validator's message)."""
    for entry in value.split(","):
        host, _, port = entry.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port[,host:port], got {entry.strip()!r}")
    return value


def consumer_config(
    bootstrap: str, group: str, *, instance_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    if instance_id is not None:
        # Static membership: the broker keeps this member's partitions for it through a
        # restart (up to session.timeout.ms), so a crashed processor that comes back
        # resumes at once, with no rebalance stalling the rest of the group.
        extra = {"group.instance.id": instance_id, **extra}
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        # At-least-once: an offset is stored only after MongoDB acknowledged the write of its
        # message; the background commit then only ever commits written work.
        "enable.auto.offset.store": False,
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 1000,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 2_000,
        "fetch.min.bytes": 1,
        "fetch.wait.max.ms": 50,
        "enable.partition.eof": False,
        **extra,
    }


def producer_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        # Idempotence makes the broker drop the duplicates a retried send would create.
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        **extra,
    }


def ensure_topics(
    bootstrap: str, topics: Iterable[str], partitions: int = 3, replication: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns those created. Safe to re-run."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [t for t in topics if t not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=partitions, replication_factor=replication) for t in wanted]
    )
    created = []
    for topic, future in futures.items():
        try:
            future.result()
            created.append(topic)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


def consumer_lag(consumer: Consumer) -> int | None:
    """Messages between the group's position and the end of each assigned partition,
    from the watermarks the fetcher already has (no broker round trip)."""
    assignment = consumer.assignment()
    if not assignment:
        return None
    lag = 0
    for tp in consumer.position(assignment):
        try:
            _low, high = consumer.get_watermark_offsets(tp, cached=True)
        except KafkaException:
            return None
        if high < 0:
            continue
        position = tp.offset if tp.offset >= 0 else 0
        lag += max(high - position, 0)
    return lag


def commit_stored(consumer: Consumer) -> None:
    """Synchronous commit of the stored offsets; "nothing to commit" is not an error."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as error:
        if error.args[0].code() != KafkaError._NO_OFFSET:
            log.warning("commit failed", extra={"error": str(error)})
