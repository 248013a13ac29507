"""The publishing loop: events from a source, paced by it, into Kafka; counts every delivery.

Nothing is dropped: a full local queue means wait and retry; a delivery the client reports
failed for a passing reason (a broker restarting, a partition briefly unknown) is sent
again, a few times with backoff; a stop request ends production and flushes (bounded)
what was already handed to the client, so the summary says exactly how many events the
broker acknowledged. A resent event may reach the topic twice; the processor stores each
`event_id` once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from gpucost.errors import ServiceUnavailable
from gpucost.runtime.events import TokenEvent, encode_event
from gpucost.runtime.kafka import KEY_PARTITIONER
from gpucost.runtime.sample_wire import sample_key

log = logging.getLogger(__name__)

DEFAULT_TOPIC: Final = "token_usage"
MAX_BATCH: Final = 1_000
"""Events published between two `poll(0)`s: delivery reports are served, and a stop request
seen, at least this often, even at the highest rates."""
MAX_SLEEP_S: Final = 0.1
"""Longest single sleep: bounds how late a stop request or a replay's next event is noticed."""
MAX_RESENDS: Final = 8
"""Sends of one event after its first failed: with the backoff below, about 27 s in all,
longer than a broker restart takes."""
RESENDABLE: Final = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
    }
)
"""Delivery errors that say "not now" rather than "never" (a too-large message, a topic
the client may not write, a fatal idempotence error: those are final)."""


def resend_delay(attempt: int) -> float:
    """Seconds before resend number `attempt` (1-based): 0.5, 1, 2, 4, then 5."""
    return float(min(5.0, 0.5 * 2 ** (attempt - 1)))


def resendable(error: KafkaError) -> bool:
    return not error.fatal() and (error.retriable() or error.code() in RESENDABLE)


class EventSource(Protocol):
    """Where events come from and when: the token bucket (synthetic) or a trace's clock."""

    def due(self, most: int) -> list[TokenEvent]:
        """Events to publish now, at most `most`; empty when the next is not due yet."""
        ...

    def wait(self) -> float | None:
        """Seconds until the next event is due; None when the source is exhausted."""
        ...


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Summary:
    sent: int
    """Handed to the client."""
    acked: int
    """Acknowledged by all in-sync replicas (acks=all): these are in the topic."""
    failed: int
    """Failed for good: a final error, or still failing after MAX_RESENDS sends again."""
    pending: int
    """Neither, when the run ended: the flush timed out on them, or they wait to be resent."""
    elapsed_s: float
    last_error: str | None = None
    """The last delivery error, if any failed: usually says why all the others did."""
    resent: int = 0
    """Sends again after a passing failure (one event can count several times)."""

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "elapsed_s": round(self.elapsed_s, 3), "rate": round(self.rate, 1)}


def producer_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        # Idempotence: a send the client retries after a lost ack is not written twice.
        "enable.idempotence": True,
        "acks": "all",
        # A few ms of lingering fills batches at high rates; at 50/s it adds at most 10 ms.
        "linger.ms": 10,
        "batch.size": 512 * 1024,
        "batch.num.messages": 10_000,
        # lz4 is built into librdkafka and the cheapest on CPU; events are repetitive JSON.
        "compression.type": "lz4",
        # The same key -> partition mapping as gpucost-agent's samples (runtime/kafka.py).
        "partitioner": KEY_PARTITIONER,
        **extra,
    }


class Publisher:
    """One confluent_kafka Producer keyed by GPU, with delivery counts."""

    def __init__(
        self,
        producer: Producer,
        topic: str = DEFAULT_TOPIC,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._producer = producer
        self.topic = topic
        self.clock = clock
        self.sleep = sleep
        self.sent = 0
        self.acked = 0
        self.failed = 0
        self.resent = 0
        self.last_error: str | None = None
        # (due, value, key, attempt): failed deliveries waiting to be sent again, in due order
        # (every delay is the same function of the attempt, so appends keep it nearly so).
        self._resend: deque[tuple[float, bytes, str | bytes | None, int]] = deque()
        # The attempt number of each event on its way again, keyed by its bytes: only the
        # few resent events are here, so the hot path never pays for it.
        self._attempts: dict[bytes, int] = {}

    @classmethod
    def connect(cls, bootstrap: str, topic: str = DEFAULT_TOPIC, **extra: Any) -> Publisher:
        publisher: Publisher
        config = producer_config(bootstrap, **extra)
        # A single configured callback instead of one per produce() call: cheaper per event.
        config["on_delivery"] = lambda err, msg: publisher.delivered(err, msg)
        config["error_cb"] = _log_client_error
        # librdkafka's own log lines go through logging (JSON lines), not raw to stderr.
        config["logger"] = log
        publisher = cls(Producer(config), topic)
        return publisher

    def delivered(self, error: KafkaError | None, message: Message | None) -> None:
        if error is None:
            self.acked += 1
            if self._attempts and message is not None:
                self._attempts.pop(message.value() or b"", None)
            return
        self.last_error = str(error)
        if message is None or (value := message.value()) is None:
            self.failed += 1
            return
        attempt = self._attempts.pop(value, 0) + 1
        if attempt > MAX_RESENDS or not resendable(error):
            self.failed += 1
            return
        due = self.clock() + resend_delay(attempt)
        self._resend.append((due, value, message.key(), attempt))

    def resend_due(self) -> None:
        """Send again the failed deliveries whose backoff has passed."""
        now = self.clock()
        while self._resend and self._resend[0][0] <= now:
            _due, value, key, attempt = self._resend.popleft()
            self._attempts[value] = attempt
            self._produce(value, key)
            self.resent += 1

    def publish(self, event: TokenEvent) -> None:
        # Keyed by node, like the GPU samples of gpucost-agent: a node's events and
        # samples share a partition number, so one processor owns its windows.
        self._produce(encode_event(event), sample_key(event.node))
        self.sent += 1

    def _produce(self, value: bytes, key: str | bytes | None) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value, key)
                return
            except BufferError:
                # The local queue is full: serve delivery reports to make room, never drop.
                self._producer.poll(0.05)

    def poll(self, timeout: float = 0.0) -> None:
        self._producer.poll(timeout)
        self.resend_due()

    def flush(self, timeout: float) -> int:
        """Wait up to `timeout` s for outstanding deliveries, resends included; returns how
        many are left (in the client, or waiting to be resent)."""
        deadline = self.clock() + timeout
        while True:
            left = int(self._producer.flush(max(0.0, deadline - self.clock())))
            now = self.clock()
            if not self._resend or now >= deadline:
                return left + len(self._resend)
            self.sleep(max(0.0, min(self._resend[0][0], deadline) - now))
            self.resend_due()

    def wait_for_broker(self, timeout: float) -> None:
        """Wait until the broker answers and knows the topic; fail early and clearly if not,
        rather than queueing events that would time out one by one."""
        deadline = time.monotonic() + timeout
        problem = "no Kafka broker answered"
        hint = "check --bootstrap / KAFKA_BOOTSTRAP and that the broker is up"
        while True:
            try:
                # Asking for the topic by name also creates it where the broker auto-creates.
                metadata = self._producer.list_topics(
                    self.topic, timeout=max(0.2, min(deadline - time.monotonic(), 5))
                )
                topic = metadata.topics.get(self.topic)
                if topic is not None and topic.error is None and topic.partitions:
                    return
                problem = f"topic {self.topic!r} does not exist"
                hint = "create it, or let the broker auto-create topics"
            except KafkaException:
                pass
            if time.monotonic() >= deadline:
                raise ServiceUnavailable(f"{problem} (waited {timeout:g} s)", hint)
            time.sleep(0.2)

    def summary(self, elapsed_s: float, pending: int = 0) -> Summary:
        return Summary(
            self.sent, self.acked, self.failed, pending, elapsed_s, self.last_error, self.resent
        )


def run(
    source: EventSource,
    publisher: Publisher,
    *,
    count: int | None = None,
    duration: float | None = None,
    stop: StopFlag | None = None,
    flush_timeout: float = 30.0,
    on_progress: Callable[[Summary], None] | None = None,
    progress_every: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Summary:
    """Publish until `count` events, `duration` seconds, the source runs dry or `stop` is set;
    then flush for at most `flush_timeout` s and return what happened to every event."""
    start = clock()
    next_progress = start + progress_every
    while stop is None or not stop.is_set():
        now = clock()
        if duration is not None and now - start >= duration:
            break
        most = MAX_BATCH if count is None else min(MAX_BATCH, count - publisher.sent)
        if most <= 0:
            break
        for event in source.due(most):
            publisher.publish(event)
        publisher.poll(0)
        if on_progress is not None and now >= next_progress:
            on_progress(publisher.summary(now - start))
            next_progress = now + progress_every
        wait = source.wait()
        if wait is None:
            break
        if wait > 0:
            if duration is not None:
                wait = min(wait, max(0.0, start + duration - clock()))
            sleep(min(wait, MAX_SLEEP_S))
    pending = publisher.flush(flush_timeout)
    return publisher.summary(clock() - start, pending)


def _log_client_error(error: KafkaError) -> None:
    # librdkafka retries transient errors (broker down, timeouts) by itself; say so, go on.
    log.warning("kafka client error: %s", error)
