"""The publishing loop's bookkeeping, against a stand-in for the client's local queue.

The real broker is exercised in tests/integration/test_producer.py; here only the loop:
bounds, stop, a full queue, counts."""

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError

from gpucost.runtime.events import TokenEvent, parse_event
from gpucost.runtime.producer import MAX_RESENDS, Publisher, resend_delay, run
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
        assert (topic, key) == ("t", event.node.encode())
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


class Sent:
    """What a delivery report carries back: the message's value and key."""

    def __init__(self, value: bytes, key: str) -> None:
        self._value, self._key = value, key

    def value(self) -> bytes:
        return self._value

    def key(self) -> str:
        return self._key


class Flaky(QueueOnly):
    """Fails the first `failures` deliveries of every event with `error`, then delivers."""

    def __init__(self, error: KafkaError, failures: int) -> None:
        super().__init__()
        self.error = error
        self.failures = failures
        self.tries: dict[bytes, int] = {}

    def poll(self, _timeout: float = 0) -> int:
        served = list(self.queued)
        self.queued.clear()
        for topic, value, key in served:
            self.tries[value] = self.tries.get(value, 0) + 1
            if self.tries[value] <= self.failures:
                self.on_delivery(self.error, Sent(value, key))
            else:
                self.delivered.append((topic, value, key))
                self.on_delivery(None, Sent(value, key))
        return len(served)


def flaky_setup(
    error: KafkaError, failures: int
) -> tuple[Flaky, Publisher, SyntheticSource, Clock]:
    client = Flaky(error, failures)
    clock = Clock()
    publisher = Publisher(client, "t", clock=clock, sleep=clock.sleep)
    client.on_delivery = publisher.delivered
    events = SyntheticEvents(node="n", gpus=3, seed=1, clock=lambda: 1.9e9)
    return client, publisher, SyntheticSource(events, TokenBucket(100.0, clock=clock)), clock


def test_a_passing_failure_is_sent_again_until_acknowledged() -> None:
    client, publisher, source, clock = flaky_setup(KafkaError(KafkaError._UNKNOWN_PARTITION), 3)
    summary = run(source, publisher, count=50, clock=clock, sleep=clock.sleep)
    assert (summary.sent, summary.acked, summary.failed, summary.pending) == (50, 50, 0, 0)
    assert summary.resent == 150
    assert len({value for _, value, _ in client.delivered}) == 50
    # Each resend keeps the event's key, so its node's partition and order.
    for _topic, value, key in client.delivered:
        event = parse_event(value)
        assert isinstance(event, TokenEvent)
        assert key == event.node.encode()


def test_a_final_error_is_not_sent_again() -> None:
    client, publisher, source, clock = flaky_setup(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), 1)
    summary = run(source, publisher, count=20, clock=clock, sleep=clock.sleep)
    assert (summary.acked, summary.failed, summary.resent) == (0, 20, 0)
    assert client.delivered == []


def test_an_event_that_keeps_failing_is_given_up_after_the_last_resend() -> None:
    _client, publisher, source, clock = flaky_setup(KafkaError(KafkaError._MSG_TIMED_OUT), 99)
    summary = run(source, publisher, count=1, clock=clock, sleep=clock.sleep)
    assert (summary.acked, summary.failed, summary.resent) == (0, 1, MAX_RESENDS)
    assert "_MSG_TIMED_OUT" in (summary.last_error or "")


def test_the_flush_waits_out_the_backoff_of_pending_resends() -> None:
    _client, publisher, source, clock = flaky_setup(KafkaError(KafkaError._TRANSPORT), 4)
    summary = run(source, publisher, count=10, clock=clock, sleep=clock.sleep)
    # 0.5 + 1 + 2 + 4 s of backoff after the last event was produced.
    assert summary.acked == 10
    assert clock.now >= 7.5


def test_a_flush_that_runs_out_of_time_counts_waiting_resends_as_pending() -> None:
    _client, publisher, source, clock = flaky_setup(KafkaError(KafkaError._TRANSPORT), 4)
    summary = run(source, publisher, count=10, clock=clock, sleep=clock.sleep, flush_timeout=2)
    assert summary.acked < 10
    assert summary.acked + summary.failed + summary.pending == 10


def test_the_backoff_doubles_to_five_seconds() -> None:
    assert [resend_delay(n) for n in range(1, MAX_RESENDS + 1)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        5.0,
        5.0,
        5.0,
        5.0,
    ]
