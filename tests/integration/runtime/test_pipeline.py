"""Producers → Kafka → processor → MongoDB, for real: exactly once, costs conserved,
every kind of bad input dead-lettered and counted, HTTP endpoints answering."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from gpucost.runtime.events import MAX_EVENT_BYTES
from support.pipeline import Pipeline, wait_until
from support.streams import event, publish, read_topic

pytestmark = pytest.mark.integration


BAD_PAYLOADS: list[tuple[bytes, str]] = [
    (b"\x00\xffnot json at all", "not_json"),
    (b'{"v": 1, "event_id": ', "not_json"),
    (b"[1, 2, 3]", "not_object"),
    (b'"just a string"', "not_object"),
    (json.dumps(event(v=3)).encode(), "unsupported_version"),
    (json.dumps({k: v for k, v in event().items() if k != "model"}).encode(), "missing_field"),
    (json.dumps(event(surprise=True)).encode(), "unknown_field"),
    (json.dumps(event(prompt_tokens=-5)).encode(), "invalid_field"),
    (json.dumps(event(completion_tokens=10**12)).encode(), "invalid_field"),
    (json.dumps(event(prompt_tokens="120")).encode(), "invalid_field"),
    (json.dumps(event(event_id="not-a-uuid")).encode(), "invalid_field"),
    (b'{"pad": "' + b"x" * MAX_EVENT_BYTES + b'"}', "too_large"),
    (b"", "empty"),
    (json.dumps(event(ts=time.time() + 3600)).encode(), "future_ts"),
]


def windows_with_tokens(pipeline: Pipeline) -> list[dict[str, Any]]:
    return list(pipeline.gpu_metrics.find({"total_tokens": {"$gt": 0}}))


def assert_costs_conserved(pipeline: Pipeline) -> None:
    for window in windows_with_tokens(pipeline):
        shares = list(
            pipeline.token_usage.find(
                {
                    "node": window["node"],
                    "gpu": window["gpu"],
                    "window_start": window["window_start"],
                },
                {"allocated_cost_usd": 1, "cost_per_token": 1, "total_tokens": 1},
            )
        )
        assert sum(s["total_tokens"] for s in shares) == window["total_tokens"]
        assert math.fsum(s["allocated_cost_usd"] for s in shares) == pytest.approx(
            window["cost_usd"], rel=1e-9
        )
        assert {s["cost_per_token"] for s in shares} == {window["cost_per_token"]}
        # The factory's settings, not the document's own fields: $3.5/h, 2 s windows.
        assert window["window_s"] == 2.0
        assert window["price_per_hour_usd"] == 3.5
        assert window["cost_usd"] == pytest.approx(3.5 * 2.0 / 3600, rel=1e-12)


def test_ten_thousand_events_exactly_once_with_costs_and_dead_letters(
    pipeline_factory: Any,
) -> None:
    pipeline: Pipeline = pipeline_factory()
    pipeline.start()
    good = [json.dumps(event()).encode() for _ in range(10_000)]
    mixed: list[bytes] = []
    for i, payload in enumerate(good):
        mixed.append(payload)
        if i % 700 == 0:
            mixed.append(BAD_PAYLOADS[(i // 700) % len(BAD_PAYLOADS)][0])
    bad_count = len(mixed) - len(good)
    expected_reasons = Counter(
        BAD_PAYLOADS[(i // 700) % len(BAD_PAYLOADS)][1] for i in range(0, 10_000, 700)
    )
    publish(pipeline.bootstrap, pipeline.topic, mixed)

    wait_until(
        lambda: pipeline.token_usage.count_documents({"costed": True}) == 10_000,
        timeout=120,
        what="10,000 costed events",
    )
    assert pipeline.token_usage.count_documents({}) == 10_000
    assert_costs_conserved(pipeline)
    windows = windows_with_tokens(pipeline)
    assert sum(w["requests"] for w in windows) == 10_000
    assert sum(w["total_tokens"] for w in windows) == 10_000 * 160
    assert {w["source"] for w in windows} == {"seed"}

    dead = read_topic(pipeline.bootstrap, pipeline.dlq_topic, bad_count)
    assert len(dead) == bad_count
    reasons = Counter(dict(m.headers())["reason"].decode() for m in dead)
    assert reasons == expected_reasons
    assert sorted(m.value() or b"" for m in dead) == sorted(p for p in mixed if p not in set(good))

    assert httpx.get(f"{pipeline.http}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{pipeline.http}/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["gpu_source"]["name"] == "seed"
    metrics = httpx.get(f"{pipeline.http}/metrics").text
    assert "gpucost_events_written_total 10000.0" in metrics
    assert f"gpucost_events_consumed_total {len(mixed)}.0" in metrics
    for reason, count in expected_reasons.items():
        line = f'gpucost_events_dead_lettered_total{{reason="{reason}"}} {count}.0'
        assert line in metrics
    assert 'gpucost_cost_per_million_tokens_usd{gpu="0",node="vm3"}' in metrics
    assert pipeline.stop() == 0


def test_redelivered_and_repeated_events_are_stored_once(pipeline_factory: Any) -> None:
    pipeline: Pipeline = pipeline_factory()
    pipeline.start()
    events = [json.dumps(event()).encode() for _ in range(200)]
    publish(pipeline.bootstrap, pipeline.topic, events + events[:50])
    wait_until(
        lambda: pipeline.token_usage.count_documents({}) == 200, timeout=60, what="200 events"
    )
    assert pipeline.stop() == 0
    # Again across a restart: the same ids once more, consumed by a fresh process.
    publish(pipeline.bootstrap, pipeline.topic, events[100:])
    pipeline.start()
    wait_until(
        lambda: (
            "gpucost_events_duplicate_total 100.0" in httpx.get(f"{pipeline.http}/metrics").text
        ),
        timeout=60,
        what="the repeats to be consumed",
    )
    assert pipeline.token_usage.count_documents({}) == 200
    wait_until(
        lambda: pipeline.token_usage.count_documents({"costed": True}) == 200,
        timeout=30,
        what="costs",
    )
    assert_costs_conserved(pipeline)


def test_late_event_updates_its_window(pipeline_factory: Any) -> None:
    pipeline: Pipeline = pipeline_factory()
    pipeline.start()
    now = time.time()
    first = [json.dumps(event(ts=now)).encode() for _ in range(20)]
    publish(pipeline.bootstrap, pipeline.topic, first)
    start = math.floor(now / 2.0) * 2.0

    def window() -> dict[str, Any] | None:
        doc: dict[str, Any] | None = pipeline.gpu_metrics.find_one(
            {"gpu": "0", "window_start": start}
        )
        return doc

    wait_until(lambda: (w := window()) is not None and w["requests"] == 20, timeout=30, what="w")
    before = window()
    assert before is not None

    # Arrives after its window was written: the window and every share are recomputed.
    publish(pipeline.bootstrap, pipeline.topic, [json.dumps(event(ts=now)).encode()])
    wait_until(lambda: (w := window()) is not None and w["requests"] == 21, timeout=30, what="21")
    after = window()
    assert after is not None
    assert after["cost_usd"] == before["cost_usd"]
    assert after["cost_per_token"] == pytest.approx(before["cost_usd"] / (21 * 160))
    assert after["energy_j"] == pytest.approx(before["energy_j"])
    wait_until(
        lambda: pipeline.token_usage.count_documents({"costed": True}) == 21, timeout=30, what="c"
    )
    assert_costs_conserved(pipeline)
    assert pipeline.stop() == 0
