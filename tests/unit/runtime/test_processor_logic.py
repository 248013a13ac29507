"""The processor's own rules, without Kafka or MongoDB: which GPU an event names,
which windows it may write, and what a dying window task does to readiness."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from gpucost.runtime.mongo import MongoStore
from gpucost.runtime.processor import Processor
from gpucost.runtime.samples import GpuSample
from gpucost.runtime.settings import ProcessorSettings

pytestmark = pytest.mark.unit


def processor(**settings: Any) -> Processor:
    config = ProcessorSettings(
        price_per_hour_usd=3.5,
        kafka_bootstrap="127.0.0.1:1",
        mongodb_uri="mongodb://u:p@127.0.0.1:1/gpucost",  # type: ignore[arg-type]
        **settings,
    )
    # connect=False: nothing here reaches a server.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        config.mongodb_uri.get_secret_value(), connect=False
    )
    return Processor(
        config,
        store=MongoStore(client, "gpucost"),
        source=None,
        consumer_factory=lambda: pytest.fail("no consumer here"),
        dlq_producer=None,  # type: ignore[arg-type]
        clock=lambda: 1_800_000_000.0,
    )


def sample(index: int, uuid: str, **readings: Any) -> GpuSample:
    return GpuSample(t=1_800_000_000.0, gpu_index=index, source="nvml", gpu_uuid=uuid, **readings)


def test_an_event_naming_a_uuid_is_filed_under_that_node_s_index() -> None:
    p = processor()
    p._add_sample("node-a", sample(1, "GPU-aaa"))
    p._add_sample("node-b", sample(3, "GPU-bbb"))
    assert p._gpu_key("node-a", "GPU-aaa") == "1"
    assert p._gpu_key("node-b", "GPU-bbb") == "3"
    # A UUID is known only on its own node; an index is taken as it is.
    assert p._gpu_key("node-b", "GPU-aaa") == "GPU-aaa"
    assert p._gpu_key("node-a", 0) == "0"


def test_impossible_readings_are_dropped_and_counted() -> None:
    p = processor()
    gpu = p._add_sample(
        "n", sample(0, "GPU-x", power_w=float("nan"), gpu_util_pct=101.0, temp_c=40.0)
    )
    assert gpu == ("n", "0")
    kept = p.buffers[gpu].samples[-1]
    assert kept.power_w is None
    assert kept.gpu_util_pct == 100.0
    assert kept.temp_c == 40.0
    rendered = p.metrics.render().decode()
    assert 'gpucost_gpu_readings_dropped_total{field="power_w"} 1.0' in rendered


def test_only_the_owner_of_a_node_s_partition_may_write_its_windows() -> None:
    p = processor(gpu_source="agent")

    async def scenario() -> None:
        p._loop = asyncio.get_running_loop()
        p.node_partition.update({"node-a": 0, "node-b": 1})
        await p._take_over({0})
        assert p.windows.owns(("node-a", "0", 0))
        assert not p.windows.owns(("node-b", "0", 0))
        assert not p.windows.owns(("node-c", "0", 0))  # never seen: not ours to write
        p._add_sample("node-a", sample(0, "GPU-a"))
        await p._hand_over({0})
        assert not p.windows.owns(("node-a", "0", 0))
        assert ("node-a", "0") not in p.buffers
        assert ("node-a", "0") not in p.windows.schedule.next_sampled

    # _take_over asks MongoDB for the partition's pending windows: none reachable here.
    async def no_pending(partitions: set[int] | None = None) -> list[Any]:
        return []

    p.store.pending_windows = no_pending  # type: ignore[method-assign]
    asyncio.run(scenario())


def test_a_window_task_that_dies_makes_the_processor_unready_and_stop() -> None:
    p = processor()
    p.health.mongo_ok = True
    p.health.last_poll = 1_800_000_000.0
    assert p.readiness()[0]

    async def dies() -> None:
        raise KeyError("a bug")

    async def scenario() -> None:
        p._loop = asyncio.get_running_loop()
        task = asyncio.create_task(dies())
        task.add_done_callback(p._window_task_ended)
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)

    asyncio.run(scenario())
    ready, checks = p.readiness()
    assert not ready
    assert checks["stopping"] is True
    assert isinstance(p.window_error, KeyError)
