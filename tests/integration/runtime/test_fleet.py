"""Costs for a fleet: GPU samples from agents on several nodes, several processors.

GPU_SOURCE=agent: the samples come through Kafka, keyed by node like the events. The
checks are the cost rules themselves, read back from MongoDB: every GPU of every node
is charged price × time, window by window, with no gap and no window twice; each
window's shares add up to its cost; no window was written before its samples arrived.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

import pytest

from support.pipeline import Pipeline, wait_until
from support.samples import SampleStream, publish_samples_between
from support.streams import EventStream

pytestmark = pytest.mark.integration

PRICE = 3.5
WINDOW_S = 2.0


def windows_by_gpu(pipeline: Pipeline) -> dict[tuple[str, str], list[dict[str, Any]]]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for window in pipeline.gpu_metrics.find({}, {"_id": 0}):
        grouped[(window["node"], window["gpu"])].append(window)
    for windows in grouped.values():
        windows.sort(key=lambda w: w["window_start"])
    return dict(grouped)


def assert_windows_tile_time(windows: list[dict[str, Any]]) -> None:
    """One GPU's windows: contiguous, none twice, each at the full price of its time."""
    starts = [round(w["window_start"] * 1000) for w in windows]
    width = round(WINDOW_S * 1000)
    assert starts == list(range(starts[0], starts[-1] + width, width)), "a gap or a repeat"
    for window in windows:
        assert window["cost_usd"] == pytest.approx(PRICE * WINDOW_S / 3600, rel=1e-12)
        assert window["price_per_hour_usd"] == PRICE


def assert_shares_add_up(pipeline: Pipeline, window: dict[str, Any]) -> None:
    shares = list(
        pipeline.token_usage.find(
            {"node": window["node"], "gpu": window["gpu"], "window_start": window["window_start"]},
            {"allocated_cost_usd": 1, "total_tokens": 1, "cost_per_token": 1},
        )
    )
    assert sum(s["total_tokens"] for s in shares) == window["total_tokens"]
    if window["total_tokens"]:
        assert math.fsum(s["allocated_cost_usd"] for s in shares) == pytest.approx(
            window["cost_usd"], abs=1e-9
        )
        assert {s["cost_per_token"] for s in shares} == {window["cost_per_token"]}


def assert_priced_from_samples(windows: list[dict[str, Any]]) -> None:
    # The first window may start before the first sample; every later one had samples.
    for window in windows[1:]:
        assert window["sample_count"] > 0, window
        assert window["source"] == "seed"
        assert window["energy_j"] is not None
        assert window["energy_j"] > 0


def wait_all_costed(pipeline: Pipeline, count: int, timeout: float = 90) -> None:
    wait_until(
        lambda: pipeline.token_usage.count_documents({"costed": True}) == count,
        timeout=timeout,
        what=f"{count} costed events",
    )


def test_two_nodes_with_a_gpu_0_each_are_two_gpus_both_charged_in_full(
    pipeline_factory: Any,
) -> None:
    pipeline = pipeline_factory(window_s=WINDOW_S, partitions=3, GPU_SOURCE="agent")
    samples = SampleStream(pipeline.bootstrap, pipeline.samples_topic, ["node-a", "node-b"])
    samples.start()
    pipeline.start()
    events = EventStream(
        pipeline.bootstrap, pipeline.topic, 600, rate=100, gpus=1, nodes=["node-a", "node-b"]
    )
    events.start()
    events.finish(60)
    wait_all_costed(pipeline, 600)
    time.sleep(2 * WINDOW_S)
    samples.finish()
    time.sleep(WINDOW_S + 2)

    gpus = windows_by_gpu(pipeline)
    assert set(gpus) == {("node-a", "0"), ("node-b", "0")}
    for windows in gpus.values():
        assert_windows_tile_time(windows)
        assert_priced_from_samples(windows)
        for window in windows:
            assert_shares_add_up(pipeline, window)
    # The same instants, charged once per node: two GPUs, not one.
    assert {w["window_start"] for w in gpus[("node-a", "0")]} & {
        w["window_start"] for w in gpus[("node-b", "0")]
    }
    tokens = sum(w["total_tokens"] for ws in gpus.values() for w in ws)
    assert tokens == 600 * 160
    assert pipeline.token_usage.count_documents({"node": "node-a"}) == 300


def test_three_processors_with_rebalances_write_every_window_once(
    pipeline_factory: Any,
) -> None:
    nodes = [f"node-{i}" for i in range(6)]
    # A grace that rebalance pauses fit in: an event later than it rewrites its window.
    first = pipeline_factory(
        window_s=WINDOW_S, partitions=3, GPU_SOURCE="agent", WINDOW_GRACE_S="3"
    )
    second, third = first.sibling(), first.sibling()
    samples = SampleStream(first.bootstrap, first.samples_topic, nodes)
    samples.start()
    first.start()
    events = EventStream(first.bootstrap, first.topic, 3000, rate=100, gpus=1, nodes=nodes)
    events.start()
    time.sleep(5)
    second.start()  # a rebalance: first hands partitions over
    time.sleep(5)
    third.start()  # another: one partition each
    wait_until(
        lambda: all(p.assigned_partitions() == 2 for p in (first, second, third)),
        timeout=60,
        what="one partition of each topic per processor",
    )
    time.sleep(6)
    assert second.stop() == 0  # and back: its partitions go to the other two
    events.finish(60)
    wait_all_costed(first, 3000, timeout=120)
    time.sleep(2 * WINDOW_S)
    samples.finish()
    time.sleep(WINDOW_S + 3)

    gpus = windows_by_gpu(first)
    assert set(gpus) == {(node, "0") for node in nodes}
    for windows in gpus.values():
        # One writer per window: the processor that owned the node's partition then.
        assert [w for w in windows if len(w["written_by"]) != 1] == []
        assert [w for w in windows if w["revision"] != 1] == []
        assert_windows_tile_time(windows)
        assert_priced_from_samples(windows)
        for window in windows:
            assert_shares_add_up(first, window)
    assert sum(w["total_tokens"] for ws in gpus.values() for w in ws) == 3000 * 160
    # Each surviving processor really wrote windows: ownership was split, not idle.
    for processor in (first, third):
        assert processor.metric("gpucost_windows_written_total") > 0


def test_idle_windows_of_a_restart_gap_are_charged_afterwards(pipeline_factory: Any) -> None:
    pipeline = pipeline_factory(window_s=WINDOW_S, partitions=3, GPU_SOURCE="agent")
    samples = SampleStream(pipeline.bootstrap, pipeline.samples_topic, ["node-a", "node-b"])
    samples.start()
    pipeline.start()
    time.sleep(3 * WINDOW_S)
    assert pipeline.stop() == 0
    stopped_at = time.time()
    time.sleep(6 * WINDOW_S)  # down for six windows while the agents go on sampling
    restarted_at = time.time()
    pipeline.start()
    time.sleep(3 * WINDOW_S)
    samples.finish()
    time.sleep(WINDOW_S + 3)

    for windows in windows_by_gpu(pipeline).values():
        assert_windows_tile_time(windows)
        assert_priced_from_samples(windows)
        # Samples read again after the restart do not write a window a second time.
        assert [w for w in windows if w["revision"] != 1] == []
        starts = [w["window_start"] for w in windows]
        # Windows wholly inside the gap were written, after it, from kept samples.
        assert any(stopped_at + WINDOW_S <= s < restarted_at - WINDOW_S for s in starts)
        total = math.fsum(w["cost_usd"] for w in windows)
        assert total == pytest.approx(PRICE * len(windows) * WINDOW_S / 3600, rel=1e-12)


def test_a_backlog_longer_than_the_sample_memory_is_priced_from_its_own_samples(
    pipeline_factory: Any,
) -> None:
    # Twenty minutes of samples waiting in Kafka (a processor down that long) arrive in
    # a few batches; the processor keeps ten minutes of samples behind the newest, but
    # none of a window it has yet to write.
    window_s = 10.0
    pipeline = pipeline_factory(window_s=window_s, partitions=3, GPU_SOURCE="agent")
    end = time.time() - 30
    start = end - 1200
    published = publish_samples_between(
        pipeline.bootstrap, pipeline.samples_topic, "node-a", start, end, step_s=1.0
    )
    assert published > 1000
    pipeline.start()
    expected = int((end - start) // window_s) - 1
    wait_until(
        lambda: pipeline.gpu_metrics.count_documents({"node": "node-a"}) >= expected,
        timeout=120,
        what=f"{expected} windows",
    )
    windows = sorted(pipeline.gpu_metrics.find({"node": "node-a"}), key=lambda w: w["window_start"])
    inside = [w for w in windows if start + window_s <= w["window_start"] <= end - 2 * window_s]
    assert len(inside) > 100
    assert [w["window_start"] for w in inside if not w["sample_count"]] == []
    assert all(w["energy_j"] is not None and w["energy_j"] > 0 for w in inside)
