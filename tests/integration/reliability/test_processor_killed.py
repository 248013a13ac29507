"""Case 1: the processor is killed with SIGKILL again and again while events flow."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from support.pipeline import Pipeline, wait_until
from support.streams import EventStream, store_count, stored_event_ids

pytestmark = pytest.mark.integration

EVENTS = 100_000
KILLS = 5
RATE = 1_000  # events/s offered
RECOVERY_S = 60
WINDOW_S = 10.0  # the default
GPUS = 4


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(
    pipeline_factory: Any, figures: dict[str, Any]
) -> None:
    count, kills = EVENTS, KILLS
    seed = int(os.environ.get("GPUCOST_RELIABILITY_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    # As deployed (remote/plan.py): Docker restarts the crashed container under the same
    # static group member id.
    pipeline: Pipeline = pipeline_factory(
        window_s=WINDOW_S, partitions=4, KAFKA_GROUP_INSTANCE_ID="processor-1"
    )
    pipeline.start()
    stream = EventStream(pipeline.bootstrap, pipeline.topic, count, rate=RATE, gpus=GPUS)
    started = time.monotonic()
    stream.start()

    # Random moments while the events flow: kill i at a random time in the i-th of `kills`
    # equal slices of 5-85 % of the stream's length, so that a kill can land anywhere in a
    # batch's life and the last one leaves at least 15 % of the stream still to come.
    stream_s = count / RATE
    width = 0.80 / kills
    moments = [stream_s * (0.05 + width * (i + rng.random())) for i in range(kills)]
    killed_at: list[float] = []
    pids = [pipeline.pid]

    def wrote_since(stored_before: int) -> Callable[[], bool]:
        def wrote() -> bool:
            stored = pipeline.token_usage.estimated_document_count()
            return stored > stored_before or stored >= count

        return wrote

    resumed_after: list[float] = []
    restarted = started
    for moment in moments:
        time.sleep(max(0.0, started + moment - time.monotonic()))
        pipeline.kill()
        killed_at.append(round(time.monotonic() - started, 2))
        stored_at_kill = pipeline.token_usage.estimated_document_count()
        restarted = time.monotonic()
        pipeline.start()
        pids.append(pipeline.pid)
        # Each new process writes something before it is killed again.
        wait_until(wrote_since(stored_at_kill), timeout=120, what="a write by the new process")
        resumed_after.append(round(time.monotonic() - restarted, 2))
    last_restart = restarted

    def settled() -> bool:
        return (
            not stream.is_alive()
            and pipeline.token_usage.estimated_document_count() >= count
            and pipeline.lag() == 0
        )

    figures.update(
        events=count,
        kills=len(killed_at),
        killed_at_s=killed_at,
        writing_again_after_restart_s=resumed_after,
        seed=seed,
    )
    try:
        bound = last_restart + RECOVERY_S - time.monotonic()
        wait_until(settled, timeout=bound, what="every event stored and lag 0", every=0.5)
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
        lag=pipeline.lag(),
    )
    assert len(set(pids)) == kills + 1
    assert not stream.acks.failed
    assert len(acked) == count
    assert stored.documents == count
    assert stored.distinct_event_ids == count
    assert ids == acked
    assert figures["lag"] == 0
