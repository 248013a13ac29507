"""Event streams with produce acknowledgements, and the checks the reliability tests make:
what the group committed, what MongoDB holds, what the DLQ holds."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition


def event(ts: float | None = None, gpu: int = 0, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "event_id": str(uuid.uuid4()),
        "ts": time.time() if ts is None else ts,
        "model": "llama-3.1-8b",
        "gpu": gpu,
        "node": "vm3",
        "prompt_tokens": 120,
        "completion_tokens": 40,
    }
    body.update(overrides)
    return body


@dataclass
class Acks:
    """What the broker acknowledged, by event id: (partition, offset)."""

    acked: dict[str, tuple[int, int]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def callback(self, event_id: str) -> Any:
        def done(error: KafkaError | None, message: Message) -> None:
            if error is None:
                self.acked[event_id] = (message.partition() or 0, message.offset() or 0)
            else:
                self.failed[event_id] = str(error)

        return done


class EventStream(threading.Thread):
    """Produces `count` fresh events at `rate`/s over `gpus` GPUs, as the producer does:
    idempotent, acks=all, keyed by GPU; or over `keys` keys, to spread few GPUs over many
    partitions; or, with `nodes`, round-robin over those nodes' GPUs and keyed by node,
    as the producer does. Stops by itself; `acks` says which were acknowledged."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        count: int,
        *,
        rate: float,
        gpus: int = 4,
        keys: int | None = None,
        nodes: Sequence[str] | None = None,
        flush_timeout_s: float = 180.0,
        **config: Any,
    ) -> None:
        super().__init__(name="event-stream", daemon=True)
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                **config,
            }
        )
        self.topic, self.count, self.rate, self.gpus = topic, count, rate, gpus
        self.keys = keys or gpus
        self.nodes = list(nodes or [])
        self.flush_timeout_s = flush_timeout_s
        self.acks = Acks()
        self.sent = 0
        self.unflushed = -1
        self.stop_requested = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        for i in range(self.count):
            if self.stop_requested.is_set():
                break
            # Paced against the ideal schedule, in steps of 1 ms or more.
            ahead = started + i / self.rate - time.monotonic()
            if ahead > 0.001:
                time.sleep(ahead)
            body = event(gpu=i % self.gpus)
            key = str(i % self.keys).encode()
            if self.nodes:
                body["node"] = self.nodes[i % len(self.nodes)]
                body["gpu"] = i // len(self.nodes) % self.gpus
                key = body["node"].encode()
            payload = json.dumps(body).encode()
            while True:
                try:
                    self.producer.produce(
                        self.topic,
                        payload,
                        key=key,
                        on_delivery=self.acks.callback(body["event_id"]),
                    )
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.sent += 1
            self.producer.poll(0)
        self.unflushed = self.producer.flush(self.flush_timeout_s)

    def finish(self, timeout: float) -> None:
        self.join(timeout)
        assert not self.is_alive(), f"producer still running after {timeout}s"
        assert self.unflushed == 0, f"{self.unflushed} messages never acknowledged"


def publish(
    bootstrap: str,
    topic: str,
    payloads: Iterable[bytes],
    key: bytes = b"0",
    config: dict[str, Any] | None = None,
) -> int:
    """Produce every payload with one key (one partition) and wait for every acknowledgement."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, **(config or {})}
    )
    count = 0
    for payload in payloads:
        while True:
            try:
                producer.produce(topic, payload, key=key)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        if count % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    return count


def group_offsets(bootstrap: str, group: str, topic: str) -> dict[int, tuple[int, int]]:
    """Per partition: (the group's committed offset, or -1 for none; the high watermark)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        committed = consumer.committed(partitions, timeout=10)
        result = {}
        for tp in committed:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, tp.partition), timeout=10
            )
            result[tp.partition] = (tp.offset, high)
        return result
    finally:
        consumer.close()


def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Messages the group has not committed past; a partition never committed counts whole."""
    offsets = group_offsets(bootstrap, group, topic)
    return sum(high - max(committed, 0) for committed, high in offsets.values())


@dataclass(frozen=True)
class StoreCount:
    documents: int
    distinct_event_ids: int

    @property
    def duplicates(self) -> int:
        return self.documents - self.distinct_event_ids


def store_count(collection: Any) -> StoreCount:
    documents = collection.count_documents({})
    rows = list(
        collection.aggregate([{"$group": {"_id": "$event_id"}}, {"$count": "n"}], allowDiskUse=True)
    )
    return StoreCount(documents, rows[0]["n"] if rows else 0)


def stored_event_ids(collection: Any) -> set[str]:
    return {doc["event_id"] for doc in collection.find({}, {"event_id": 1, "_id": 0})}


def header(message: Message, name: str) -> str | None:
    value = dict(message.headers() or []).get(name)
    return value.decode() if isinstance(value, bytes) else value


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list[Message]:
    """Everything in `topic` from the start: at least `expected` messages, then one more
    second so that extras (duplicates) would show up."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(messages) < expected and time.monotonic() < deadline:
        messages += [m for m in consumer.consume(1000, 0.5) if m.error() is None]
    messages += [m for m in consumer.consume(1000, 1.0) if m.error() is None]
    consumer.close()
    return messages
