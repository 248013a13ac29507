"""Case 1: the processor is killed with SIGKILL again and again while events flow."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from support.pipeline import Pipeline, wait_until
from support.streams import EventStream, group_lag, store_count, stored_event_ids

pytestmark = pytest.mark.integration

RATE = 1_000  # events/s offered: about what SecantusDB takes here, so the stream flows
RECOVERY_S = 60
WINDOW_S = 10.0  # the default
GPUS = 4


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(
    pipeline_factory: Any, sizes: Any, figures: dict[str, Any]
) -> None:
    count, kills = sizes.kill_events, sizes.kills
    seed = int(os.environ.get("GPUCOST_RELIABILITY_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    pipeline: Pipeline = pipeline_factory(window_s=WINDOW_S, partitions=4)
    pipeline.start()
    stream = EventStream(pipeline.bootstrap, pipeline.topic, count, rate=RATE, gpus=GPUS)
    started = time.monotonic()
    stream.start()

    # Random moments, spread over the stream: kill i when a random share of the events in
    # the i-th of `kills` equal slices of 5-85 % is stored, then a random fraction of a
    # second more so that it can land anywhere in a batch's life.
    width = 0.80 / kills
    points = [int((0.05 + width * (i + rng.random())) * count) for i in range(kills)]
    killed_at: list[float] = []
    pids = [pipeline.pid]

    def stored_at_least(n: int) -> Callable[[], bool]:
        return lambda: pipeline.token_usage.estimated_document_count() >= n

    for point in points:
        # Each new process writes something before it is killed again.
        point = max(point, pipeline.token_usage.estimated_document_count() + 1)
        wait_until(stored_at_least(point), timeout=120, what=f"{point} events stored", every=0.1)
        time.sleep(rng.uniform(0.0, 1.0))
        pipeline.kill()
        killed_at.append(round(time.monotonic() - started, 2))
        pipeline.start()
        pids.append(pipeline.pid)
    last_restart = time.monotonic()

    def settled() -> bool:
        return (
            not stream.is_alive()
            and pipeline.token_usage.estimated_document_count() >= count
            and group_lag(pipeline.bootstrap, pipeline.group, pipeline.topic) == 0
        )

    figures.update(events=count, kills=len(killed_at), killed_at_s=killed_at, seed=seed)
    try:
        wait_until(settled, timeout=RECOVERY_S, what="every event stored and lag 0", every=0.5)
    except AssertionError:
        figures["stored_when_the_bound_passed"] = pipeline.token_usage.estimated_document_count()
        raise
    recovered_s = time.monotonic() - last_restart
    stream.finish(timeout=5)

    stored = store_count(pipeline.token_usage)
    acked = set(stream.acks.acked)
    ids = stored_event_ids(pipeline.token_usage)
    figures.update(
        acknowledged=len(acked),
        documents=stored.documents,
        duplicates=stored.duplicates,
        lost=len(acked - ids),
        recovered_after_last_restart_s=round(recovered_s, 1),
        lag=group_lag(pipeline.bootstrap, pipeline.group, pipeline.topic),
    )
    assert len(set(pids)) == kills + 1
    assert not stream.acks.failed
    assert len(acked) == count
    assert stored.documents == count
    assert stored.distinct_event_ids == count
    assert ids == acked
    assert figures["lag"] == 0
