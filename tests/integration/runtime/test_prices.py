"""Prices by node and by GPU model, and a price change that never reprices history."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from support.pipeline import Pipeline, wait_until
from support.samples import SampleStream
from support.streams import event, publish

pytestmark = pytest.mark.integration

WINDOW_S = 2.0
TABLE = json.dumps({"models": {"NVIDIA H200": 7.0}, "nodes": {"node-b": 1.0}})


def settled_windows(pipeline: Pipeline, node: str) -> list[dict[str, Any]]:
    return sorted(pipeline.gpu_metrics.find({"node": node}), key=lambda w: w["window_start"])


def test_a_gpu_is_priced_by_node_then_model_and_a_rewrite_keeps_its_price(
    pipeline_factory: Any,
) -> None:
    pipeline = pipeline_factory(window_s=WINDOW_S, GPU_SOURCE="agent", PRICE_TABLE=TABLE)
    samples = SampleStream(pipeline.bootstrap, pipeline.samples_topic, ["node-a", "node-b"])
    samples.start()
    pipeline.start()
    wait_until(
        lambda: all(len(settled_windows(pipeline, n)) >= 3 for n in ("node-a", "node-b")),
        timeout=60,
        what="three windows per node",
    )
    # The trace's GPU is an "NVIDIA H200": node-a by its model, node-b by its node.
    for node, price in (("node-a", 7.0), ("node-b", 1.0)):
        for window in settled_windows(pipeline, node):
            assert window["gpu_name"] == "NVIDIA H200"
            assert window["price_per_hour_usd"] == price
            assert window["cost_usd"] == pytest.approx(price * WINDOW_S / 3600, rel=1e-12)

    # The price changes; a late event then rewrites an old window of node-a.
    assert pipeline.stop() == 0
    pipeline.env["PRICE_TABLE"] = "{}"
    pipeline.env["PRICE_PER_HOUR_USD"] = "10"
    pipeline.start()
    old = settled_windows(pipeline, "node-a")[1]
    late = event(ts=old["window_start"] + WINDOW_S / 2, node="node-a")
    publish(pipeline.bootstrap, pipeline.topic, [json.dumps(late).encode()], key=b"node-a")
    wait_until(
        lambda: pipeline.token_usage.count_documents({"costed": True}) == 1,
        timeout=60,
        what="the late event costed",
    )
    time.sleep(3 * WINDOW_S)
    samples.finish()
    rewritten = pipeline.gpu_metrics.find_one(
        {"node": "node-a", "window_start": old["window_start"]}
    )
    assert rewritten is not None
    assert rewritten["revision"] == old["revision"] + 1
    assert rewritten["requests"] == 1
    assert rewritten["price_per_hour_usd"] == 7.0  # the price it was first costed at
    assert rewritten["cost_usd"] == pytest.approx(7.0 * WINDOW_S / 3600, rel=1e-12)
    (share,) = pipeline.token_usage.find({"node": "node-a"})
    assert share["allocated_cost_usd"] == pytest.approx(rewritten["cost_usd"], rel=1e-12)
    # Windows costed after the change are at the new price.
    newest = settled_windows(pipeline, "node-a")[-1]
    assert newest["price_per_hour_usd"] == 10.0
