"""Events out of the request path: a background thread hands them to Kafka, or to the spool.

`submit` only appends to an in-memory queue, so a request never waits on the broker.
The thread produces through the idempotent producer (the house config); a delivery that
fails (the broker away longer than `delivery_timeout_s`) goes to the on-disk spool, and
while the spool holds anything, new events join it behind, so replay keeps their order.
Every `retry_s` the thread replays the spool's oldest events and waits for their acks;
the acknowledged leave the spool, the rest stay for the next try.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from confluent_kafka import KafkaError, Message, Producer

from gpucost.runtime.events import TokenEvent, encode_event
from gpucost.runtime.kafka import producer_config
from gpucost.runtime.proxy.metrics import ProxyMetrics
from gpucost.runtime.proxy.spool import Spool
from gpucost.runtime.sample_wire import sample_key

log = logging.getLogger(__name__)

REPLAY_BATCH: Final = 500
TICK_S: Final = 0.05

Record = tuple[bytes, bytes]
"""(value, key) of one event: the encoded event and its node, the partition key."""


class EventPublisher:
    def __init__(
        self,
        producer: Producer,
        topic: str,
        spool: Spool,
        metrics: ProxyMetrics,
        *,
        delivery_timeout_s: float = 5.0,
        retry_s: float = 1.0,
    ) -> None:
        self._producer = producer
        self.topic = topic
        self.spool = spool
        self.metrics = metrics
        self.delivery_timeout_s = delivery_timeout_s
        self.retry_s = retry_s
        self._queue: queue.SimpleQueue[Record] = queue.SimpleQueue()
        self._failed: list[Record] = []
        self._in_flight = 0
        self._stop = threading.Event()
        self._next_replay = 0.0
        self._thread = threading.Thread(target=self._run, name="event-publisher", daemon=True)
        self.acked = 0
        metrics.spooled_now.set(len(spool))

    @classmethod
    def connect(
        cls, bootstrap: str, topic: str, spool: Spool, metrics: ProxyMetrics, **options: Any
    ) -> EventPublisher:
        delivery_timeout_s = float(options.get("delivery_timeout_s", 5.0))
        config = producer_config(
            bootstrap,
            # Fail a delivery soon when the broker is away: the spool keeps it, not memory.
            **{"message.timeout.ms": int(delivery_timeout_s * 1000), "logger": log},
        )
        config["error_cb"] = _log_client_error
        return cls(Producer(config), topic, spool, metrics, **options)

    def start(self) -> None:
        self._thread.start()

    def submit(self, event: TokenEvent) -> None:
        """Queue one event for Kafka. Never blocks, never raises on a broker problem."""
        # Keyed by node like every token event and GPU sample: one processor owns a
        # node's windows (docs/architecture.md, "Identity and ownership").
        self._queue.put((encode_event(event), sample_key(event.node)))
        self.metrics.events.inc()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread: flush what Kafka takes within `timeout`, spool the rest."""
        self._stop.set()
        self._thread.join(timeout + 5)
        self.spool.close()

    @property
    def pending(self) -> int:
        """Events not acknowledged yet: queued, in the client, or spooled."""
        return self._queue.qsize() + self._in_flight + len(self._failed) + len(self.spool)

    # ---- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._step()
        self._shutdown()

    def _step(self) -> None:
        records = self._take(block=True)
        if records:
            if len(self.spool) or self._failed:
                self._to_spool(records)
            else:
                for value, key in records:
                    self._produce(value, key, self._on_delivery)
        self._producer.poll(0)
        if self._failed:
            failed, self._failed = self._failed, []
            self._to_spool(failed)
        if len(self.spool) and time.monotonic() >= self._next_replay and not self._in_flight:
            self._replay()

    def _take(self, *, block: bool) -> list[Record]:
        records: list[Record] = []
        try:
            if block:
                records.append(self._queue.get(timeout=TICK_S))
            while len(records) < REPLAY_BATCH:
                records.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return records

    def _produce(self, value: bytes, key: bytes, callback: Callable[..., None]) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value, key, on_delivery=callback)
                self._in_flight += 1
                return
            except BufferError:
                self._producer.poll(0.05)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        self._in_flight -= 1
        if error is None:
            self.acked += 1
            self.metrics.published.inc()
            return
        log.warning("event not delivered; spooling it", extra={"error": str(error)})
        self._failed.append((message.value() or b"", message.key() or b""))

    def _to_spool(self, records: list[Record]) -> None:
        dropped = self.spool.append(records)
        self.metrics.spooled.inc(len(records) - dropped)
        self.metrics.dropped.inc(dropped)
        self.metrics.spooled_now.set(len(self.spool))

    def _replay(self) -> None:
        """Send the spool's oldest events and wait for each one's answer."""
        batch = self.spool.peek(REPLAY_BATCH)
        results: list[bool | None] = [None] * len(batch)

        def answered(index: int) -> Callable[[KafkaError | None, Message], None]:
            def callback(error: KafkaError | None, _message: Message) -> None:
                self._in_flight -= 1
                results[index] = error is None

            return callback

        for index, (value, key) in enumerate(batch):
            self._produce(value, key, answered(index))
        self._producer.flush(self.delivery_timeout_s + 5)
        done = 0
        while done < len(batch) and results[done]:
            done += 1
        self.spool.remove_head(done)
        self.acked += done
        self.metrics.published.inc(done)
        self.metrics.replayed.inc(done)
        self.metrics.spooled_now.set(len(self.spool))
        if done < len(batch):
            # Acknowledged events behind a failed one stay spooled and are sent again:
            # a duplicate on the topic, which the processor stores once (by event_id).
            self._next_replay = time.monotonic() + self.retry_s
        if done:
            log.info("replayed spooled events", extra={"events": done, "left": len(self.spool)})

    def _shutdown(self) -> None:
        while records := self._take(block=False):
            if len(self.spool) or self._failed:
                self._to_spool(records)
            else:
                for value, key in records:
                    self._produce(value, key, self._on_delivery)
        self._producer.flush(self.delivery_timeout_s + 5)
        if self._failed:
            failed, self._failed = self._failed, []
            self._to_spool(failed)


def _log_client_error(error: KafkaError) -> None:
    # librdkafka reconnects by itself; deliveries that fail meanwhile go to the spool.
    log.warning("kafka client error: %s", error)
