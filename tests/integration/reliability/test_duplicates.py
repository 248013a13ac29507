"""Case 5: the same event delivered more than once is stored once: in one batch, on
other partitions, after a clean restart and after a kill -9."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.pipeline import Pipeline, wait_until
from support.streams import event, publish, store_count, stored_event_ids

pytestmark = pytest.mark.integration

EVENTS = 1_000


def test_every_repeat_of_an_event_is_one_document(
    pipeline_factory: Any, figures: dict[str, Any]
) -> None:
    pipeline: Pipeline = pipeline_factory(partitions=3)
    pipeline.start()
    events = [json.dumps(event(gpu=i % 4)).encode() for i in range(EVENTS)]

    def stored(n: int) -> None:
        wait_until(
            lambda: pipeline.token_usage.estimated_document_count() >= n,
            timeout=60,
            what=f"{n} documents",
        )

    def consumed(n: int, what: str) -> None:
        wait_until(
            lambda: pipeline.metric("gpucost_events_consumed_total") >= n, timeout=60, what=what
        )

    # Twice back to back (same batch), then once more on other partitions (other keys).
    publish(pipeline.bootstrap, pipeline.topic, [p for p in events for _ in (0, 1)])
    for key in (b"1", b"2"):
        publish(pipeline.bootstrap, pipeline.topic, events, key=key)
    stored(EVENTS)
    consumed(4 * EVENTS, "every copy consumed")
    assert pipeline.stop() == 0

    # Across a clean restart, then across a kill -9.
    publish(pipeline.bootstrap, pipeline.topic, events)
    pipeline.start()
    publish(pipeline.bootstrap, pipeline.topic, events)
    consumed(2 * EVENTS, "the copies after the restart consumed")
    pipeline.kill()
    publish(pipeline.bootstrap, pipeline.topic, events)
    pipeline.start()
    # At least: what was consumed but not yet committed at the kill comes again too.
    consumed(EVENTS, "the copies after the kill consumed")
    wait_until(
        lambda: pipeline.lag() == 0,
        timeout=30,
        what="lag 0",
    )
    result = store_count(pipeline.token_usage)
    figures.update(
        distinct_events=EVENTS,
        deliveries=EVENTS * 7,
        documents=result.documents,
        duplicates=result.duplicates,
    )
    assert result.documents == EVENTS
    assert result.duplicates == 0
    assert stored_event_ids(pipeline.token_usage) == {json.loads(p)["event_id"] for p in events}
