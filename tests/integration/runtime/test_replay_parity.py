"""The live pipeline and `gpucost replay` agree on the same recorded trace.

The H200 trace's samples go to the samples topic exactly as gpucost-agent encodes them
(its wire format, keyed by node), its requests to the events topic as token events of
that node; a processor with GPU_SOURCE=agent costs them. Its windows must be the ones
`replay_trace` computes offline from the same trace: the same windows and tokens, and
cost and energy within 1 %.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from gpucost.report.replay import replay_trace
from gpucost.runtime.sample_wire import encode_sample, sample_key
from gpucost.runtime.trace import default_seed_path, load_trace
from support.pipeline import wait_until
from support.streams import publish

pytestmark = pytest.mark.integration

NODE = "h200-node"
PRICE = 3.5
WINDOW_S = 10.0


def test_the_h200_trace_costs_the_same_live_as_in_replay(pipeline_factory: Any) -> None:
    trace = load_trace(default_seed_path())
    expected = replay_trace(trace, price_per_hour_usd=PRICE, window_s=WINDOW_S)
    pipeline = pipeline_factory(window_s=WINDOW_S, partitions=3, GPU_SOURCE="agent")
    pipeline.start()
    key = sample_key(NODE)
    publish(
        pipeline.bootstrap,
        pipeline.samples_topic,
        (encode_sample(s, NODE, agent="replay") for s in trace.samples),
        key=key,
    )
    events = [
        json.dumps(
            {
                "v": 1,
                "event_id": e.event_id,
                "ts": e.ts,
                "model": e.model,
                "gpu": e.gpu_index,
                "node": NODE,
                "prompt_tokens": e.prompt_tokens,
                "completion_tokens": e.completion_tokens,
            }
        ).encode()
        for e in trace.events
    ]
    publish(pipeline.bootstrap, pipeline.topic, events, key=key)

    wait_until(
        lambda: (
            pipeline.token_usage.count_documents({"costed": True}) == len(events)
            and pipeline.gpu_metrics.count_documents({}) >= len(expected.windows)
        ),
        timeout=90,
        what="every event costed and every window written",
    )
    # A last rewrite (a window whose events came after its samples) settles first.
    wait_until(lambda: pipeline.pending_windows.count_documents({}) == 0, timeout=30, what="")
    live = sorted(pipeline.gpu_metrics.find({"node": NODE}), key=lambda w: w["window_start"])

    assert [w["window_start"] for w in live] == [w.cost.window_start for w in expected.windows]
    assert [w["total_tokens"] for w in live] == [w.cost.total_tokens for w in expected.windows]
    assert sum(w["total_tokens"] for w in live) == expected.total.total_tokens
    live_cost = math.fsum(w["cost_usd"] for w in live)
    assert live_cost == pytest.approx(expected.total.cost_usd, rel=0.01)
    live_energy = math.fsum(w["energy_j"] for w in live)
    assert expected.total.energy_j is not None
    assert live_energy == pytest.approx(expected.total.energy_j, rel=0.01)
    for window, offline in zip(live, expected.windows, strict=True):
        assert window["energy_j"] == pytest.approx(offline.cost.energy_j, rel=0.01)
