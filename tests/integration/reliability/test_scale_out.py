"""Case 6: two processors share a group; one is killed and the other takes its partitions."""

from __future__ import annotations

import time
from typing import Any

import pytest

from support.pipeline import Pipeline, wait_until
from support.streams import EventStream, store_count, stored_event_ids

pytestmark = pytest.mark.integration

PARTITIONS = 6
RATE = 500
STREAM_S = 24


def test_survivor_takes_the_killed_processors_partitions_and_totals_are_exact(
    pipeline_factory: Any, figures: dict[str, Any]
) -> None:
    first: Pipeline = pipeline_factory(partitions=PARTITIONS)
    second = first.sibling()
    first.start()
    second.start()
    wait_until(
        lambda: (
            first.assigned_partitions() > 0
            and second.assigned_partitions() > 0
            and first.assigned_partitions() + second.assigned_partitions() == PARTITIONS
        ),
        timeout=60,
        what="the partitions shared between both processors",
    )
    shared = (first.assigned_partitions(), second.assigned_partitions())
    count = RATE * STREAM_S
    stream = EventStream(first.bootstrap, first.topic, count, rate=RATE, gpus=PARTITIONS * 2)
    stream.start()
    wait_until(
        lambda: first.token_usage.estimated_document_count() >= count // 3,
        timeout=60,
        what="a third of the stream stored",
    )
    second.kill()
    killed = time.monotonic()
    wait_until(
        lambda: first.assigned_partitions() == PARTITIONS,
        timeout=60,
        what="the survivor to take every partition",
        every=0.2,
    )
    takeover_s = time.monotonic() - killed
    wait_until(lambda: not stream.is_alive(), timeout=STREAM_S + 30, what="the stream to end")
    stream.finish(timeout=5)
    wait_until(
        lambda: first.token_usage.estimated_document_count() >= count and first.lag() == 0,
        timeout=60,
        what="every event stored and lag 0",
        every=0.5,
    )
    caught_up_s = time.monotonic() - killed
    acked = set(stream.acks.acked)
    ids = stored_event_ids(first.token_usage)
    stored = store_count(first.token_usage)
    figures.update(
        events=count,
        partitions=PARTITIONS,
        partitions_before_kill=list(shared),
        takeover_s=round(takeover_s, 1),
        all_stored_after_kill_s=round(caught_up_s, 1),
        documents=stored.documents,
        duplicates=stored.duplicates,
        lost=len(acked - ids),
    )
    assert len(acked) == count
    assert stored.documents == count
    assert stored.duplicates == 0
    assert ids == acked
