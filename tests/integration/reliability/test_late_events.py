"""Case 7: events older than the windows being written land in their own window, and that
window's cost per token and every share in it are recomputed; its GPU figures (from
the samples of its time) and its price stay as they were."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

from support.pipeline import Pipeline, wait_until
from support.samples import SampleStream, publish_samples_between
from support.streams import EventStream, event, publish

pytestmark = pytest.mark.integration

WINDOW_S = 2.0
# How far back the late windows are: just behind, a minute, and beyond the processor's
# memory of GPU samples (10 minutes), where the stored window's GPU figures are kept.
AGES_S = (6.0, 60.0, 3600.0)
FIRST, LATE = 40, 25  # events per late window, before and after it was written
TOKENS = 160  # per event (120 + 40)
NODE = "vm3"  # what support.streams' events name


def window(pipeline: Pipeline, start: float) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = pipeline.gpu_metrics.find_one(
        {"node": NODE, "gpu": "0", "window_start": start}
    )
    return doc


def shares(pipeline: Pipeline, start: float) -> list[dict[str, Any]]:
    return list(
        pipeline.token_usage.find(
            {"node": NODE, "gpu": "0", "window_start": start},
            {"allocated_cost_usd": 1, "cost_per_token": 1, "total_tokens": 1, "costed": 1},
        )
    )


def test_late_events_land_in_their_window_and_reprice_it(
    pipeline_factory: Any, figures: dict[str, Any]
) -> None:
    # GPU samples come from agents, so the old windows have samples of their own time.
    pipeline: Pipeline = pipeline_factory(window_s=WINDOW_S, partitions=3, GPU_SOURCE="agent")
    pipeline.start()
    now = time.time()
    starts = [math.floor((now - age) / WINDOW_S) * WINDOW_S for age in AGES_S]

    def in_window(start: float, n: int) -> list[bytes]:
        return [json.dumps(event(ts=start + WINDOW_S * (i + 0.5) / n)).encode() for i in range(n)]

    # Oldest first, each written before the next: the processor keeps 10 minutes of
    # samples behind the newest it has, and an hour-old window must be written from its
    # own samples before newer ones push them out.
    for start in sorted(starts):
        publish_samples_between(
            pipeline.bootstrap, pipeline.samples_topic, NODE, start - 1, start + WINDOW_S + 1
        )
        publish(pipeline.bootstrap, pipeline.topic, in_window(start, FIRST), key=NODE.encode())
        wait_until(
            lambda s=start: bool((w := window(pipeline, s)) and w["requests"] == FIRST),
            timeout=60,
            what=f"the window {now - start:.0f} s old written",
        )
    before = {s: window(pipeline, s) for s in starts}

    # Current traffic keeps the processor writing new windows while the late events come.
    samples = SampleStream(pipeline.bootstrap, pipeline.samples_topic, [NODE])
    samples.start()
    current = EventStream(pipeline.bootstrap, pipeline.topic, 2_000, rate=200, gpus=1, nodes=[NODE])
    current.start()
    time.sleep(2 * WINDOW_S)
    late_sent = time.monotonic()
    publish(
        pipeline.bootstrap,
        pipeline.topic,
        [p for s in starts for p in in_window(s, LATE)],
        key=NODE.encode(),
    )

    def repriced(start: float) -> bool:
        w = window(pipeline, start)
        if w is None or w["requests"] != FIRST + LATE:
            return False
        docs = shares(pipeline, start)
        return len(docs) == FIRST + LATE and all(
            d["costed"] and d["cost_per_token"] == w["cost_per_token"] for d in docs
        )

    wait_until(lambda: all(repriced(s) for s in starts), timeout=60, what="the late windows")
    repriced_s = time.monotonic() - late_sent
    current.finish(timeout=30)
    samples.finish()

    results = []
    for start in starts:
        old, new = before[start], window(pipeline, start)
        assert old is not None
        assert new is not None
        docs = shares(pipeline, start)
        allocated = math.fsum(d["allocated_cost_usd"] for d in docs)
        results.append(
            {
                "age_s": round(now - start),
                "requests": new["requests"],
                "cost_per_token_before": old["cost_per_token"],
                "cost_per_token_after": new["cost_per_token"],
                "allocated_sum_usd": allocated,
                "window_cost_usd": new["cost_usd"],
            }
        )
        assert new["cost_usd"] == pytest.approx(3.5 * WINDOW_S / 3600)
        assert new["cost_usd"] == old["cost_usd"]
        assert new["total_tokens"] == (FIRST + LATE) * TOKENS
        assert new["cost_per_token"] == pytest.approx(new["cost_usd"] / new["total_tokens"])
        assert allocated == pytest.approx(new["cost_usd"], rel=1e-9)
        # Priced from the samples of its own time, and still so after the rewrite, also
        # where those samples had left the processor's memory (the hour-old window).
        assert old["sample_count"] > 0
        assert old["energy_j"] is not None
        assert old["energy_j"] > 0
        assert new["energy_j"] == pytest.approx(old["energy_j"], rel=1e-12)
        assert new["sample_count"] == old["sample_count"]
        assert new["price_per_hour_usd"] == old["price_per_hour_usd"] == 3.5
    figures.update(windows=results, repriced_after_late_events_s=round(repriced_s, 1))
