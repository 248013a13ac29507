"""The agent's loop: read every GPU each interval, check the readings, publish to Kafka.

Samples taken are never lost to a broker outage, only to the bound: each one waits in a
bounded buffer (runtime/agent_outbox.py) and goes to the Kafka client when the client
has fewer than `window` undelivered. The client never gives up on a message
(`message.timeout.ms=0`): during an outage it keeps its few and retries them, in order,
under the idempotent producer's sequence numbers, so the broker writes each once; the
buffer holds the rest and, when full, drops the oldest. A delivery that still fails for a
passing reason goes back to the front of the buffer. At the end (SIGTERM), everything
waiting is flushed, for a bounded time.

Every sample is accounted for: taken = acked + failed + dropped + unsent.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Final, Protocol

from confluent_kafka import KafkaError, Message, Producer

from gpucost.runtime.agent_outbox import DropSpan, Outbox, Pending
from gpucost.runtime.gpu import GpuSource, GpuSourceUnavailable
from gpucost.runtime.kafka import KEY_PARTITIONER
from gpucost.runtime.producer import resendable
from gpucost.runtime.reading_checks import check_sample
from gpucost.runtime.sample_wire import SampleRejection, decode_sample, encode_sample, sample_key

log = logging.getLogger("gpucost.agent")

MAX_WAIT_S: Final = 0.1
"""Longest single wait: bounds how late a stop request is noticed."""
MAX_WINDOW: Final = 1_000
"""Most samples with the Kafka client at once (fewer for a small buffer, see `window`)."""


def window(buffer_max: int) -> int:
    """Samples the client may hold: a tenth of the bound, at most MAX_WINDOW, so that
    nearly all of what waits during an outage is in the buffer, where the oldest can be
    dropped (the client's queue can only drop the newest)."""
    return max(1, min(MAX_WINDOW, buffer_max // 10))


def agent_producer_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        # The broker drops the duplicates the client's own retries would write.
        "enable.idempotence": True,
        "acks": "all",
        # Never time a message out: the client retries it until the broker is back, in
        # order, under one producer id. The buffer in front bounds how many it holds.
        "message.timeout.ms": 0,
        # One tick's samples (one per GPU) go in one request.
        "linger.ms": 50,
        "compression.type": "lz4",
        "partitioner": KEY_PARTITIONER,
        # Back soon after an outage ends; a reconnect attempt every 2 s costs nothing.
        "reconnect.backoff.max.ms": 2_000,
        **extra,
    }


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(slots=True)
class AgentSummary:
    node: str
    source: str
    ticks: int = 0
    read_errors: int = 0
    """Intervals in which the GPU source did not answer."""
    taken: int = 0
    """Samples checked, encoded and queued for Kafka."""
    refused: int = 0
    """Samples refused whole by the checks (a broken time or index, or the wire format)."""
    readings_dropped: Counter[str] = field(default_factory=Counter)
    readings_clamped: Counter[str] = field(default_factory=Counter)
    acked: int = 0
    """Acknowledged by all in-sync replicas: in the topic."""
    failed: int = 0
    """Refused by Kafka for good (a final error)."""
    dropped: int = 0
    """Dropped by the buffer's bound, oldest first."""
    resent: int = 0
    buffered: int = 0
    in_client: int = 0
    unsent: int = 0
    """Still waiting when the run ended (the final flush timed out)."""
    elapsed_s: float = 0.0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        counts = asdict(self)
        counts["readings_dropped"] = dict(self.readings_dropped)
        counts["readings_clamped"] = dict(self.readings_clamped)
        counts["elapsed_s"] = round(self.elapsed_s, 3)
        return counts


class Sender:
    """Moves samples from the buffer to one idempotent Producer and counts deliveries."""

    def __init__(
        self, producer: Producer, topic: str, node: str, buffer: Outbox, window: int
    ) -> None:
        self._producer = producer
        self.topic = topic
        self._key = sample_key(node)
        self.buffer = buffer
        self.window = window
        self.in_client = 0
        self.acked = 0
        self.failed = 0
        self.resent = 0
        self.last_error: str | None = None

    def top_up(self) -> None:
        """Hand the client the oldest waiting samples, up to `window` undelivered."""
        room = self.window - self.in_client
        if room <= 0:
            return
        for item in self.buffer.pop(room):
            self._producer.produce(
                self.topic, item.value, self._key, on_delivery=partial(self._delivered, item)
            )
            self.in_client += 1

    def _delivered(self, item: Pending, error: KafkaError | None, _message: Message) -> None:
        self.in_client -= 1
        if error is None:
            self.acked += 1
            return
        self.last_error = str(error)
        if resendable(error):
            # Rare with message.timeout.ms=0 (the client retries by itself); if a later
            # sample of this GPU was delivered meanwhile, this one arrives after it.
            self.resent += 1
            self.buffer.push_front([item])
        else:
            self.failed += 1
            log.error("sample refused by kafka", extra={"error": str(error)})

    def poll(self, timeout: float) -> None:
        self.top_up()
        self._producer.poll(timeout)
        self.top_up()

    def outstanding(self) -> int:
        return self.in_client + len(self.buffer)


class Agent:
    """One run of the loop; `run()` returns when `stop` is set or after `max_ticks`."""

    def __init__(
        self,
        source: GpuSource,
        sender: Sender,
        *,
        node: str,
        interval_s: float,
        agent_id: str | None = None,
        progress_every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.sender = sender
        self.node = node
        self.interval_s = interval_s
        self.agent_id = agent_id
        self.progress_every_s = progress_every_s
        self.clock = clock
        self.summary = AgentSummary(node=node, source=source.name)
        self._source_error: str | None = None
        self._refusal_logged = False

    def tick(self) -> None:
        """Read every GPU once and queue what passes the checks."""
        s = self.summary
        s.ticks += 1
        try:
            samples = self.source.read()
        except GpuSourceUnavailable as err:
            s.read_errors += 1
            if err.one_line() != self._source_error:  # once per distinct failure, not per tick
                self._source_error = err.one_line()
                log.warning("gpu source did not answer", extra={"error": self._source_error})
            return
        if self._source_error is not None:
            log.info("gpu source answers again", extra={"after": self._source_error})
            self._source_error = None
        for raw in samples:
            checked = check_sample(raw)
            s.readings_dropped.update(checked.dropped)
            s.readings_clamped.update(checked.clamped)
            if checked.sample is None:
                self._refuse(checked.refused or "refused")
                continue
            value = encode_sample(checked.sample, self.node, self.agent_id)
            # Publish only what the processor will accept: a sample it would refuse
            # (an over-long name, say) is counted here, where it can be seen.
            verdict = decode_sample(value)
            if isinstance(verdict, SampleRejection):
                self._refuse(f"{verdict.reason}: {verdict.detail}")
                continue
            self.sender.buffer.push(Pending(checked.sample.t, checked.sample.gpu_index, value))
            s.taken += 1

    def _refuse(self, why: str) -> None:
        self.summary.refused += 1
        if not self._refusal_logged:
            self._refusal_logged = True
            log.warning("sample refused; later refusals are only counted", extra={"why": why})

    def report_drops(self) -> DropSpan | None:
        span = self.sender.buffer.take_drops()
        if span is not None:
            log.warning(
                "buffer full: dropped the oldest samples",
                extra={
                    "dropped": span.count,
                    "first_t": span.first_t,
                    "last_t": span.last_t,
                    "buffer_max_samples": self.sender.buffer.limit + self.sender.window,
                },
            )
        return span

    def snapshot(self, started: float) -> AgentSummary:
        s, sender = self.summary, self.sender
        s.acked, s.failed, s.resent = sender.acked, sender.failed, sender.resent
        s.dropped = sender.buffer.dropped
        s.buffered, s.in_client = len(sender.buffer), sender.in_client
        s.last_error = sender.last_error
        s.elapsed_s = self.clock() - started
        return s

    def run(
        self,
        stop: StopFlag | None = None,
        *,
        max_ticks: int | None = None,
        flush_timeout_s: float = 10.0,
    ) -> AgentSummary:
        started = self.clock()
        next_tick = started
        next_progress = started + self.progress_every_s
        while stop is None or not stop.is_set():
            now = self.clock()
            if now >= next_tick:
                self.tick()
                # Fixed rhythm; after a stall (a slow source) skip the missed ticks
                # rather than read the GPUs in a burst.
                next_tick += self.interval_s
                if next_tick <= now:
                    next_tick = now + self.interval_s
                if max_ticks is not None and self.summary.ticks >= max_ticks:
                    break
            if now >= next_progress:
                self.report_drops()
                log.info("progress", extra=self.snapshot(started).as_dict())
                next_progress = now + self.progress_every_s
            self.sender.poll(max(0.0, min(MAX_WAIT_S, next_tick - self.clock())))
        return self.finish(started, flush_timeout_s)

    def finish(self, started: float, flush_timeout_s: float) -> AgentSummary:
        """Flush what waits, for at most `flush_timeout_s`; the rest is counted unsent."""
        deadline = self.clock() + flush_timeout_s
        while self.sender.outstanding() and self.clock() < deadline:
            self.sender.poll(min(MAX_WAIT_S, max(0.0, deadline - self.clock())))
        self.report_drops()
        summary = self.snapshot(started)
        summary.unsent = self.sender.outstanding()
        return summary
