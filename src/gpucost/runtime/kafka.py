"""Kafka client settings and small helpers shared by the processor, producer and tests."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

log = logging.getLogger(__name__)


def consumer_config(bootstrap: str, group: str, **extra: Any) -> dict[str, Any]:
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
