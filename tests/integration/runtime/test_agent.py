"""gpucost-agent against the real broker: what it says it published is in the topic, once,
in order, keyed by node, on the partition of the node's token events; through a broker
outage (a cut TcpProxy, the shared broker untouched) and past its buffer's bound."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from gpucost.runtime.agent_main import run_agent
from gpucost.runtime.agent_settings import load_agent_settings
from gpucost.runtime.events import TokenEvent, encode_event
from gpucost.runtime.producer import producer_config
from gpucost.runtime.sample_wire import SampleRejection, decode_sample, sample_key
from gpucost.runtime.samples import GpuSample
from support.netns import UnixToTcp, netns_available, netns_popen
from support.pipeline import wait_until
from support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

AGENT = Path(sys.executable).parent / "gpucost-agent"
OUTAGE_S = 15.0


@dataclass(frozen=True)
class Arrived:
    node: str
    sample: GpuSample
    key: bytes
    partition: int
    offset: int


class Collector:
    """Everything published to a topic, read from the start by a consumer of its own."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"verify-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe([topic])
        self.arrived: list[Arrived] = []

    def poll(self) -> int:
        batch = self._consumer.consume(1000, timeout=0.5)
        for message in batch:
            assert message.error() is None, message.error()
            decoded = decode_sample(message.value())
            assert not isinstance(decoded, SampleRejection), decoded
            node, sample = decoded
            self.arrived.append(
                Arrived(node, sample, message.key(), message.partition(), message.offset())
            )
        return len(batch)

    def until(self, count: int, quiet_s: float = 3.0, timeout: float = 60.0) -> list[Arrived]:
        """Read until at least `count` arrived and nothing more came for `quiet_s` (so
        duplicates would be seen)."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline:
            if self.poll():
                last = time.monotonic()
            elif len(self.arrived) >= count and time.monotonic() - last > quiet_s:
                break
        return self.arrived

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def collector_factory(kafka_bootstrap: str) -> Iterator[Callable[[str], Collector]]:
    made: list[Collector] = []

    def make(topic: str) -> Collector:
        made.append(Collector(kafka_bootstrap, topic))
        return made[-1]

    yield make
    for collector in made:
        collector.close()


def agent_env(bootstrap: str, topic: str, node: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NODE", "AGENT_ID", "KAFKA_TOPIC")}
    return {
        **env,
        "KAFKA_BOOTSTRAP": bootstrap,
        "SAMPLES_TOPIC": topic,
        "NODE": node,
        "GPU_SOURCE": "seed",
        "SAMPLE_INTERVAL_S": "0.2",
        "PROGRESS_INTERVAL_S": "1",
        **extra,
    }


def assert_once_and_in_order(arrived: list[Arrived], node: str) -> None:
    keys = [(a.node, a.sample.gpu_index, a.sample.t) for a in arrived]
    assert len(set(keys)) == len(keys), "a sample arrived twice"
    for a in arrived:
        assert a.node == node
        assert a.key == sample_key(node)
    by_gpu: dict[int, list[Arrived]] = {}
    for a in arrived:
        by_gpu.setdefault(a.sample.gpu_index, []).append(a)
    for samples in by_gpu.values():
        assert len({a.partition for a in samples}) == 1  # keyed by node: one partition
        times = [a.sample.t for a in sorted(samples, key=lambda a: a.offset)]
        assert times == sorted(times), "a GPU's samples are out of order in the topic"


def event_partition(bootstrap: str, topic: str, node: str) -> int:
    """The partition gpucost-producer's client config puts a token event of `node` on."""
    got: list[int] = []
    producer = Producer(producer_config(bootstrap))
    event = TokenEvent(
        v=1,
        event_id=uuid.uuid4(),
        ts=time.time(),
        model="m",
        gpu=0,
        node=node,
        prompt_tokens=1,
        completion_tokens=1,
    )
    producer.produce(
        topic,
        encode_event(event),
        sample_key(node),
        on_delivery=lambda err, msg: got.append(msg.partition()) if err is None else None,
    )
    assert producer.flush(30) == 0
    assert len(got) == 1
    return got[0]


def test_n_ticks_publish_n_samples_per_gpu_keyed_by_node_on_the_events_partition(
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    collector_factory: Callable[[str], Collector],
) -> None:
    samples_topic = kafka_topic_factory(partitions=3)
    events_topic = kafka_topic_factory(partitions=3)
    collector = collector_factory(samples_topic)
    nodes = [f"gpu-host-{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    ticks = 4
    for node in nodes:
        settings = load_agent_settings(
            kafka_bootstrap=kafka_bootstrap,
            samples_topic=samples_topic,
            node=node,
            gpu_source="seed",
            sample_interval_s=0.1,
        )
        summary = run_agent(settings, max_ticks=ticks)
        assert (summary.ticks, summary.taken, summary.acked) == (ticks, ticks, ticks)
        assert (summary.failed, summary.dropped, summary.unsent, summary.refused) == (0, 0, 0, 0)
        assert summary.source == "seed"

    arrived = collector.until(len(nodes) * ticks)
    assert len(arrived) == len(nodes) * ticks
    partitions = set()
    for node in nodes:
        mine = [a for a in arrived if a.node == node]
        assert_once_and_in_order(mine, node)
        # The seed trace is one GPU: N ticks, N samples of it.
        assert [a.sample.gpu_index for a in mine] == [0] * ticks
        assert {a.sample.source for a in mine} == {"seed"}
        assert all(a.sample.gpu_name and a.sample.gpu_uuid for a in mine)
        partition = event_partition(kafka_bootstrap, events_topic, node)
        assert {a.partition for a in mine} == {partition}
        partitions.add(partition)
    assert len(partitions) > 1  # the nodes are spread: the match above is not a coincidence


def start_cli(env: dict[str, str], **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(AGENT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


class Lines(threading.Thread):
    """Reads a process's stderr as it comes, so a test can wait for a log line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.lines: list[str] = []

    def run(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def json(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out


def stop(process: subprocess.Popen[str], lines: Lines) -> dict[str, Any]:
    process.send_signal(signal.SIGTERM)
    try:
        stdout = process.stdout.read() if process.stdout else ""
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    lines.join(5)
    assert process.returncode == 0, "".join(lines.lines[-20:])
    summary: dict[str, Any] = json.loads(stdout)
    return summary


def test_the_cli_samples_until_sigterm_then_flushes_and_exits_0(
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    collector_factory: Callable[[str], Collector],
) -> None:
    topic = kafka_topic_factory(partitions=3)
    node = f"cli-{uuid.uuid4().hex[:8]}"
    collector = collector_factory(topic)
    process = start_cli(agent_env(kafka_bootstrap, topic, node))
    lines = Lines(process)
    lines.start()
    wait_until(lambda: collector.poll() >= 0 and len(collector.arrived) >= 5, timeout=60, what="5")
    assert process.poll() is None, "".join(lines.lines)
    summary = stop(process, lines)
    assert summary["taken"] >= 5
    assert summary["acked"] == summary["taken"]
    assert (summary["failed"], summary["dropped"], summary["unsent"]) == (0, 0, 0)
    logs = lines.json()
    assert any(line["msg"] == "stopping" and line["signal"] == "SIGTERM" for line in logs)
    assert any(line["msg"] == "gpu source chosen" and line["source"] == "seed" for line in logs)
    arrived = collector.until(summary["acked"])
    assert len(arrived) == summary["acked"]
    assert_once_and_in_order(arrived, node)


@pytest.fixture
def netns() -> None:
    why = netns_available()
    if why is not None:
        pytest.skip(f"needs a network namespace of its own ({why})")


def run_through_outage(
    bootstrap: str, topic: str, node: str, collector: Collector, tmp_path: Path, **env: str
) -> tuple[dict[str, Any], Lines, tuple[float, float]]:
    """Start the agent behind a proxy, let samples flow, cut for OUTAGE_S, restore, let
    the backlog arrive, SIGTERM it; returns its summary, its logs and the cut's times."""
    host, _, port = bootstrap.rpartition(":")
    with (
        TcpProxy((host, int(port)), lifetime_s=OUTAGE_S + 240) as proxy,
        UnixToTcp(tmp_path / "kafka.sock", ("127.0.0.1", proxy.port)),
    ):
        process = netns_popen(
            tmp_path / "kafka.sock",
            int(port),
            [str(AGENT)],
            env=agent_env(bootstrap, topic, node, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        lines = Lines(process)
        lines.start()
        wait_until(
            lambda: collector.poll() >= 0 and len(collector.arrived) >= 5, timeout=60, what="5"
        )
        cut_at = time.time()
        proxy.cut()
        time.sleep(OUTAGE_S)
        proxy.restore()
        restored_at = time.time()
        # The backlog arrives: samples taken after the restore are in the topic.
        wait_until(
            lambda: (
                collector.poll() >= 0
                and any(a.sample.t > restored_at + 1 for a in collector.arrived)
            ),
            timeout=60,
            what="samples after the outage",
        )
        assert proxy.refused > 0  # the agent did try during the cut
        summary = stop(process, lines)
    return summary, lines, (cut_at, restored_at)


def test_a_broker_outage_loses_no_sample_taken_and_repeats_none(
    netns: None,
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    collector_factory: Callable[[str], Collector],
    tmp_path: Path,
) -> None:
    topic = kafka_topic_factory(partitions=3)
    node = f"outage-{uuid.uuid4().hex[:8]}"
    collector = collector_factory(topic)
    summary, lines, (cut_at, restored_at) = run_through_outage(
        kafka_bootstrap, topic, node, collector, tmp_path
    )
    assert (summary["failed"], summary["dropped"], summary["unsent"]) == (0, 0, 0)
    assert summary["acked"] == summary["taken"]
    arrived = collector.until(summary["acked"])
    assert len(arrived) == summary["taken"]
    assert_once_and_in_order(arrived, node)
    during = [a for a in arrived if cut_at < a.sample.t < restored_at]
    assert len(during) > OUTAGE_S / 0.2 / 2  # taken while cut off, delivered afterwards
    # It held them, and said so while it did.
    waiting = [
        line["in_client"] + line["buffered"] for line in lines.json() if line["msg"] == "progress"
    ]
    assert max(waiting) >= 10


def test_past_the_bound_the_oldest_are_dropped_counted_and_the_newest_arrive(
    netns: None,
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    collector_factory: Callable[[str], Collector],
    tmp_path: Path,
) -> None:
    topic = kafka_topic_factory(partitions=3)
    node = f"bound-{uuid.uuid4().hex[:8]}"
    collector = collector_factory(topic)
    bound = 20  # the client holds 2 of them, the buffer 18
    summary, lines, (_cut_at, restored_at) = run_through_outage(
        kafka_bootstrap,
        topic,
        node,
        collector,
        tmp_path,
        BUFFER_MAX_SAMPLES=str(bound),
    )
    assert summary["dropped"] > 0
    assert (summary["failed"], summary["unsent"]) == (0, 0)
    assert summary["taken"] == summary["acked"] + summary["dropped"]
    spans = [
        line for line in lines.json() if line["msg"] == "buffer full: dropped the oldest samples"
    ]
    assert sum(span["dropped"] for span in spans) == summary["dropped"]

    arrived = collector.until(summary["acked"])
    assert len(arrived) == summary["acked"]
    assert_once_and_in_order(arrived, node)
    # What was dropped is one run of consecutive samples: each span holds only dropped
    # ones (samples are taken in time order) and none of them arrived...
    first = min(span["first_t"] for span in spans)
    last = max(span["last_t"] for span in spans)
    assert first <= last
    assert not [a for a in arrived if first <= a.sample.t <= last]
    # ...older ones had been sent before the cut, and the newer ones it held (a full
    # buffer: all but the client's 2) arrived after it.
    assert [a for a in arrived if a.sample.t < first]
    assert len([a for a in arrived if a.sample.t > last]) >= bound - 2
    # Dropping the newest instead would also leave one run, but one that reaches up to
    # the reconnection; the oldest-first run ends a buffer's worth (18 samples, 3.6 s)
    # before it, and the client reconnects within 2.4 s of the restore (backoff at most
    # 2 s, plus jitter): some sample taken before the restore, after the run, arrived.
    assert [a for a in arrived if last < a.sample.t < restored_at]
