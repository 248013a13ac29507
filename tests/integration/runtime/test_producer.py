"""The producer against the real broker: what it reports acknowledged is what is in the topic."""

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, Message

from gpucost.runtime.events import TokenEvent, parse_event
from gpucost.runtime.producer_main import produce
from gpucost.runtime.producer_settings import load_producer_settings
from gpucost.runtime.trace import default_seed_path

PRODUCER = Path(sys.executable).parent / "gpucost-producer"


def command(bootstrap: str, topic: str, *args: str) -> list[str]:
    return [str(PRODUCER), "--bootstrap", bootstrap, "--topic", topic, *args]


def consume_all(bootstrap: str, topic: str, expected: int, quiet_s: float = 3.0) -> list[Message]:
    """Everything in `topic` from the start: stops `quiet_s` after the last message once at
    least `expected` arrived (so extras, i.e. duplicates, would be seen), or after 60 s."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"verify-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + 60
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, timeout=0.5)
            for message in batch:
                assert message.error() is None, message.error()
                messages.append(message)
            if batch:
                last = time.monotonic()
            elif len(messages) >= expected and time.monotonic() - last > quiet_s:
                break
    finally:
        consumer.close()
    return messages


def events_of(messages: list[Message]) -> list[TokenEvent]:
    events = []
    for message in messages:
        event = parse_event(message.value())
        assert isinstance(event, TokenEvent), event
        assert message.key() == event.node.encode()
        events.append(event)
    return events


def test_n_events_arrive_exactly_once_keyed_by_node_and_valid(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]
) -> None:
    topic = kafka_topic_factory(partitions=3)
    settings = load_producer_settings(
        bootstrap=kafka_bootstrap, topic=topic, rate=100_000, count=2000, gpus=4, mark="it-n"
    )
    summary = produce(settings)
    assert (summary.sent, summary.acked, summary.failed, summary.pending) == (2000, 2000, 0, 0)

    events = events_of(consume_all(kafka_bootstrap, topic, expected=2000))
    assert len(events) == 2000
    assert len({e.event_id for e in events}) == 2000
    assert {e.gpu for e in events} == {0, 1, 2, 3}
    assert {e.producer for e in events} == {"it-n"}


def test_sigterm_mid_run_exits_0_and_every_acked_event_is_in_the_topic(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]
) -> None:
    topic = kafka_topic_factory(partitions=3)
    mark = f"it-term-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(
        command(kafka_bootstrap, topic, "--rate", "2000", "--gpus", "2", "--mark", mark),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3.0)  # mid-run: no --count or --duration, it would go on forever
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["sent"] > 0
    assert summary["acked"] == summary["sent"]
    assert (summary["failed"], summary["pending"], summary["producer"]) == (0, 0, mark)
    logs = [json.loads(line) for line in stderr.splitlines()]  # JSON lines off a terminal
    assert any(line["msg"] == "stopping" and line["signal"] == "SIGTERM" for line in logs)

    events = events_of(consume_all(kafka_bootstrap, topic, expected=summary["acked"]))
    assert {e.producer for e in events} == {mark}
    assert len({e.event_id for e in events}) == len(events) == summary["acked"]


def test_a_replay_publishes_the_recorded_events_shifted_to_now(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]
) -> None:
    topic = kafka_topic_factory(partitions=1)
    started = time.time()
    result = subprocess.run(
        command(kafka_bootstrap, topic, "--replay", str(default_seed_path()), "--count", "3"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    events = events_of(consume_all(kafka_bootstrap, topic, expected=3, quiet_s=1.0))
    assert len(events) == 3
    assert {e.model for e in events} == {"llama-1.10b-random"}
    assert all(started - 1 <= float(e.ts) <= time.time() for e in events)
    assert [e.ts for e in events] == sorted(e.ts for e in events)
