"""GPU samples on Kafka, as gpucost-agent publishes them: for tests of GPU_SOURCE=agent.

`SampleStream` plays the recorded H200 trace (the seed source, shifted to now) for
several nodes at once, one message per GPU per interval, keyed by node, with the
library's own wire format. Tests that are about the agent itself run the real
`gpucost-agent`; these are about what the processor makes of the samples.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Producer

from gpucost.runtime.gpu.seed import SeedSource
from gpucost.runtime.kafka import producer_config
from gpucost.runtime.sample_wire import encode_sample, sample_key
from gpucost.runtime.samples import GpuSample


class SampleStream(threading.Thread):
    """Publishes every node's samples each `interval_s` until `finish`."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        nodes: Sequence[str],
        *,
        interval_s: float = 0.5,
        paused: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.nodes = list(nodes)
        self.interval_s = interval_s
        self.paused = paused
        self.producer = Producer(producer_config(bootstrap))
        self.sources = {node: SeedSource() for node in self.nodes}
        self.published: list[tuple[str, GpuSample]] = []
        self.failed: list[str] = []
        self._done = threading.Event()

    def publish_once(self) -> None:
        for node in self.nodes:
            for sample in self.sources[node].read():
                self.producer.produce(
                    self.topic,
                    encode_sample(sample, node, agent="test"),
                    sample_key(node),
                    on_delivery=self._delivered,
                )
                self.published.append((node, sample))
        self.producer.poll(0)

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.failed.append(str(error))

    def run(self) -> None:
        while not self._done.is_set():
            if not self.paused():
                self.publish_once()
            self._done.wait(self.interval_s)
        self.producer.flush(30)

    def finish(self, timeout: float = 30) -> None:
        self._done.set()
        self.join(timeout)
        assert not self.failed, self.failed[:3]

    @property
    def first_t(self) -> float:
        return min(s.t for _, s in self.published)


def publish_samples_between(
    bootstrap: str, topic: str, node: str, start: float, end: float, step_s: float = 0.5
) -> int:
    """The recorded trace's samples of `node`, as if taken every `step_s` over
    [start, end]: for windows in the past (late events). Returns how many."""
    at = [start]
    source = SeedSource(clock=lambda: at[0])
    producer = Producer(producer_config(bootstrap))
    count = 0
    while at[0] <= end:
        for sample in source.read():
            producer.produce(topic, encode_sample(sample, node, agent="test"), sample_key(node))
            count += 1
        at[0] += step_s
    assert producer.flush(30) == 0
    return count
