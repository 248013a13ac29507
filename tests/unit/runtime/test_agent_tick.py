"""One tick of the agent: every GPU read, the rule applied, counted, queued as the wire
format the processor decodes. (No Kafka here: a tick only fills the buffer.)"""

import dataclasses
import math

import pytest

from gpucost.runtime.agent import Agent, Sender
from gpucost.runtime.agent_outbox import Outbox
from gpucost.runtime.gpu import GpuSourceUnavailable
from gpucost.runtime.sample_wire import SampleRejection, decode_sample, sample_key
from gpucost.runtime.samples import GpuSample, SourceName

pytestmark = pytest.mark.unit

T = 1_780_000_000.0


class Recorded:
    """A GPU source that plays back readings given by the test, one list per read."""

    name: SourceName = "nvml"

    def __init__(self, reads: list[list[GpuSample] | Exception]) -> None:
        self.reads = reads

    def read(self) -> list[GpuSample]:
        got = self.reads.pop(0)
        if isinstance(got, Exception):
            raise got
        return got

    def describe(self) -> dict[str, object]:
        return {"source": self.name}

    def close(self) -> None:
        pass


def gpu(index: int, t: float = T, **readings: object) -> GpuSample:
    base = GpuSample(
        t=t,
        gpu_index=index,
        source="nvml",
        gpu_uuid=f"GPU-{index:08d}-aaaa",
        gpu_name="NVIDIA H200",
        mig_mode=False,
        power_w=300.0,
        gpu_util_pct=40.0,
    )
    return dataclasses.replace(base, **readings)  # type: ignore[arg-type]


def agent_for(source: Recorded, limit: int = 100) -> Agent:
    # The producer is never touched by tick(); only the buffer is.
    sender = Sender(None, "gpu_samples", "node-a", Outbox(limit), window=1)  # type: ignore[arg-type]
    return Agent(source, sender, node="node-a", interval_s=1.0, agent_id="agent-1")


def test_a_tick_queues_one_decodable_sample_per_gpu_with_its_identity() -> None:
    agent = agent_for(Recorded([[gpu(0), gpu(1), gpu(2, mig_mode=True)]]))
    agent.tick()
    queued = agent.sender.buffer.pop(10)
    assert agent.summary.taken == len(queued) == 3
    for index, item in enumerate(queued):
        decoded = decode_sample(item.value)
        assert not isinstance(decoded, SampleRejection)
        node, sample = decoded
        assert node == "node-a"
        assert (sample.gpu_index, item.gpu_index, item.t) == (index, index, T)
        assert sample.gpu_uuid == f"GPU-{index:08d}-aaaa"
        assert sample.gpu_name == "NVIDIA H200"
        assert sample.source == "nvml"
        assert sample.mig_mode is (index == 2)
    assert sample_key("node-a") == b"node-a"


def test_bad_readings_are_dropped_or_clamped_counted_and_the_rest_sent() -> None:
    source = Recorded(
        [
            [gpu(0, power_w=math.nan, gpu_util_pct=100.7), gpu(1, power_w=-3.0)],
            [gpu(0, t=T + 1, power_w=math.inf, gpu_util_pct=-1.0)],
        ]
    )
    agent = agent_for(source)
    agent.tick()
    agent.tick()
    assert agent.summary.taken == 3
    assert agent.summary.readings_dropped == {"power_w": 3}
    assert agent.summary.readings_clamped == {"gpu_util_pct": 2}
    samples = []
    for item in agent.sender.buffer.pop(10):
        decoded = decode_sample(item.value)
        assert not isinstance(decoded, SampleRejection)
        samples.append(decoded[1])
    assert [s.power_w for s in samples] == [None, None, None]
    assert [s.gpu_util_pct for s in samples] == [100.0, 40.0, 0.0]


def test_a_sample_the_processor_would_refuse_is_counted_not_sent() -> None:
    bad_uuid = gpu(1, gpu_uuid="GPU with spaces")  # the wire format's pattern refuses it
    source = Recorded([[gpu(0), bad_uuid, gpu(2, t=math.nan)]])
    agent = agent_for(source)
    agent.tick()
    assert agent.summary.taken == 1
    assert agent.summary.refused == 2
    assert [p.gpu_index for p in agent.sender.buffer.pop(10)] == [0]


def test_a_source_that_stops_answering_costs_its_ticks_only() -> None:
    source = Recorded([GpuSourceUnavailable("NVML: GPU is lost"), [gpu(0)]])
    agent = agent_for(source)
    agent.tick()
    agent.tick()
    assert (agent.summary.ticks, agent.summary.read_errors, agent.summary.taken) == (2, 1, 1)
