"""Case 4: 10,000 generated bad payloads interleaved with 10,000 valid events."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from support.bad_input import TWO_MB, bad_payloads
from support.pipeline import Pipeline, wait_until
from support.streams import (
    event,
    header,
    publish,
    read_topic,
    store_count,
    stored_event_ids,
)

pytestmark = pytest.mark.integration

GOOD_EVENTS = 10_000
BAD_EVENTS = 10_000
LIMIT = str(3 * 1024 * 1024)  # room for the 2 MB payload on the input topic


def allow_big_messages(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entry = ConfigEntry("max.message.bytes", LIMIT, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def test_bad_input_is_dead_lettered_counted_and_never_stops_the_processor(
    pipeline_factory: Any, figures: dict[str, Any]
) -> None:
    seed = time.time_ns() % 1_000_000
    rng = random.Random(seed)
    pipeline: Pipeline = pipeline_factory(partitions=3)
    allow_big_messages(pipeline.bootstrap, pipeline.topic)
    pipeline.start()
    pid = pipeline.pid

    good = [event(gpu=i % 4) for i in range(GOOD_EVENTS)]
    bad = list(bad_payloads(BAD_EVENTS, rng))
    stream: list[bytes] = [json.dumps(e).encode() for e in good] + [p for _, p, _ in bad]
    rng.shuffle(stream)
    assert max(len(p) for p in stream) > TWO_MB
    started = time.monotonic()
    publish(pipeline.bootstrap, pipeline.topic, stream, config={"message.max.bytes": int(LIMIT)})

    def consumed() -> bool:
        pipeline.assert_running()
        return pipeline.metric("gpucost_events_consumed_total") >= len(stream)

    wait_until(consumed, timeout=120, what="every message consumed")
    wait_until(
        lambda: pipeline.token_usage.estimated_document_count() >= len(good),
        timeout=30,
        what="every valid event stored",
    )
    elapsed = time.monotonic() - started
    dead = read_topic(pipeline.bootstrap, pipeline.dlq_topic, len(bad), timeout=60)
    reasons = Counter(header(m, "reason") for m in dead)
    stored = store_count(pipeline.token_usage)
    figures.update(
        valid=len(good),
        bad=len(bad),
        bad_kinds=dict(Counter(kind for kind, _, _ in bad)),
        documents=stored.documents,
        duplicates=stored.duplicates,
        dead_lettered=len(dead),
        reasons=dict(reasons),
        seconds_to_process=round(elapsed, 1),
        processor_exited=pipeline.process is None or pipeline.process.poll() is not None,
        seed=seed,
    )
    assert pipeline.process is not None
    assert pipeline.process.poll() is None
    assert pipeline.pid == pid
    assert stored.documents == len(good)
    assert stored.duplicates == 0
    assert stored_event_ids(pipeline.token_usage) == {e["event_id"] for e in good}
    assert len(dead) == len(bad)
    assert all(header(m, "reason") for m in dead)
    assert reasons == Counter(reason for _, _, reason in bad)
    assert pipeline.metric("gpucost_events_consumed_total") == len(stream)
    # The 2 MB message is dead-lettered cut to what the DLQ topic takes by default.
    (huge,) = [m for m in dead if header(m, "reason") == "too_large"]
    assert header(huge, "original.bytes") == str(TWO_MB + 11)
