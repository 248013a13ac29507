"""The publishing loop's bookkeeping, against a stand-in for the client's local queue.

The real broker is exercised in tests/integration/test_producer.py; here only the loop:
bounds, stop, a full queue, counts."""

from collections.abc import Callable
from typing import Any

import pytest

from gpucost.runtime.events import TokenEvent, parse_event
from gpucost.runtime.producer import Publisher, run
from gpucost.runtime.ratelimit import TokenBucket
from gpucost.runtime.synthetic import SyntheticEvents, SyntheticSource

pytestmark = pytest.mark.unit


class QueueOnly:
    """Holds produced messages like librdkafka's queue; poll() delivers them (or fails them)."""

    def __init__(self, capacity: int = 10**9, fail_every: int = 0) -> None:
        self.capacity = capacity
        self.fail_every = fail_every
        self.queued: list[tuple[str, bytes, str]] = []
        self.delivered: list[tuple[str, bytes, str]] = []
        self.on_delivery: Callable[[Any, Any], None] = lambda err, msg: None
        self.full_hits = 0
        self.reports = 0

    def produce(self, topic: str, value: bytes, key: str) -> None:
        if len(self.queued) >= self.capacity:
            self.full_hits += 1
            raise BufferError("Local: Queue full")
        self.queued.append((topic, value, key))

    def poll(self, _timeout: float = 0) -> int:
        served = len(self.queued)
        for message in self.queued:
            self.reports += 1
            failed = self.fail_every and self.reports % self.fail_every == 0
            self.on_delivery("boom" if failed else None, None)
            if not failed:
                self.delivered.append(message)
        self.queued.clear()
        return served

    def flush(self, _timeout: float = 0) -> int:
        self.poll()
        return 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + 0.0005


def setup(
    rate: float = 1000.0, **queue: int
) -> tuple[QueueOnly, Publisher, SyntheticSource, Clock]:
    client = QueueOnly(**queue)
    publisher = Publisher(client, "t")
    client.on_delivery = publisher.delivered
    clock = Clock()
    events = SyntheticEvents(node="n", gpus=3, seed=1, clock=lambda: 1.9e9)
    return client, publisher, SyntheticSource(events, TokenBucket(rate, clock=clock)), clock


def test_count_is_exact_and_every_message_is_a_keyed_valid_event() -> None:
    client, publisher, source, clock = setup()
    summary = run(source, publisher, count=2500, clock=clock, sleep=clock.sleep)
    assert (summary.sent, summary.acked, summary.failed, summary.pending) == (2500, 2500, 0, 0)
    for topic, value, key in client.delivered:
        event = parse_event(value)
        assert isinstance(event, TokenEvent)
        assert (topic, key) == ("t", str(event.gpu))
    assert summary.elapsed_s == pytest.approx(2.5, abs=0.01)


def test_duration_bounds_the_run_at_the_rate() -> None:
    _client, publisher, source, clock = setup(rate=50)
    summary = run(source, publisher, duration=60, clock=clock, sleep=clock.sleep)
    assert abs(summary.sent - 3000) <= 30
    assert clock.now == pytest.approx(60, abs=0.05)


def test_a_full_queue_is_waited_out_never_dropped() -> None:
    client, publisher, source, clock = setup(rate=100_000, capacity=7)
    summary = run(source, publisher, count=500, clock=clock, sleep=clock.sleep)
    assert client.full_hits > 0
    assert (summary.sent, summary.acked, len(client.delivered)) == (500, 500, 500)


def test_failures_are_counted_apart_from_acks() -> None:
    _client, publisher, source, clock = setup(fail_every=10)
    summary = run(source, publisher, count=100, clock=clock, sleep=clock.sleep)
    assert (summary.acked, summary.failed) == (90, 10)
    assert publisher.last_error == "boom"


def test_stop_ends_production_and_progress_is_reported() -> None:
    _client, publisher, source, clock = setup(rate=100)
    reports: list[int] = []

    class StopAt:
        def is_set(self) -> bool:
            return clock.now >= 3.0

    summary = run(
        source,
        publisher,
        stop=StopAt(),
        on_progress=lambda s: reports.append(s.sent),
        clock=clock,
        sleep=clock.sleep,
    )
    assert 295 <= summary.sent <= 305
    assert summary.acked == summary.sent
    assert len(reports) == 2
    assert reports == sorted(reports)
