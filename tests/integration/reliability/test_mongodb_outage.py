"""Case 2: MongoDB goes away for 30 s behind a TCP proxy the test cuts."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pymongo.uri_parser import parse_uri

from support.pipeline import Pipeline, wait_until
from support.streams import EventStream, group_offsets, stored_event_ids
from support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0
RATE = 300  # events/s, before, during and after the outage
BEFORE_S = 5.0
AFTER_S = 10.0


class ReadyWatch(threading.Thread):
    """Polls /ready every 0.2 s and keeps (monotonic time, status code or None)."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(name="ready-watch", daemon=True)
        self.pipeline = pipeline
        self.seen: list[tuple[float, int | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.seen.append((time.monotonic(), self.pipeline.ready()))

    def first(self, status: int, after: float) -> float | None:
        return next((t for t, s in self.seen if t >= after and s == status), None)


def test_mongodb_away_for_30_s_loses_nothing_and_commits_nothing_unwritten(
    pipeline_factory: Any, mongodb_uri: str, figures: dict[str, Any]
) -> None:
    outage_s = OUTAGE_S
    host, port = parse_uri(mongodb_uri)["nodelist"][0]
    with TcpProxy((host, port), lifetime_s=outage_s + 240) as proxy:
        proxied = mongodb_uri.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}", 1)
        assert proxied != mongodb_uri
        # SecantusDB answers `hello` as a replica set naming its own address: without a
        # direct connection the driver would find the server itself and skip the proxy.
        proxied += ("&" if "?" in proxied else "?") + "directConnection=true"
        pipeline: Pipeline = pipeline_factory(partitions=3, MONGODB_URI=proxied)
        pipeline.start()
        wait_until(lambda: pipeline.ready() == 200, timeout=30, what="/ready 200")
        watch = ReadyWatch(pipeline)
        watch.start()
        count = int(RATE * (BEFORE_S + outage_s + AFTER_S))
        stream = EventStream(pipeline.bootstrap, pipeline.topic, count, rate=RATE)
        stream.start()
        time.sleep(BEFORE_S)

        proxy.cut()
        cut_at = time.monotonic()
        # A write on the wire at the cut may still land; counted a second later, nothing may.
        time.sleep(1.0)
        stored_before = pipeline.token_usage.count_documents({})
        # What the group has committed, next to what MongoDB holds (read directly, not
        # through the proxy), sampled through the outage.
        samples: list[tuple[dict[int, tuple[int, int]], set[str]]] = []
        while time.monotonic() < cut_at + outage_s - 1:
            offsets = group_offsets(pipeline.bootstrap, pipeline.group, pipeline.topic)
            samples.append((offsets, stored_event_ids(pipeline.token_usage)))
            time.sleep(1.0)
        stored_during = pipeline.token_usage.count_documents({})
        time.sleep(max(0.0, cut_at + outage_s - time.monotonic()))
        proxy.restore()
        restored_at = time.monotonic()

        wait_until(lambda: not stream.is_alive(), timeout=AFTER_S + 30, what="the stream to end")
        stream.finish(timeout=5)
        wait_until(
            lambda: pipeline.token_usage.count_documents({}) >= count and pipeline.lag() == 0,
            timeout=60,
            what="every event stored and lag 0",
            every=0.5,
        )
        caught_up_s = time.monotonic() - restored_at
        wait_until(lambda: pipeline.ready() == 200, timeout=10, what="/ready 200 at the end")
        watch.stop.set()
        watch.join(5)

    went_503 = watch.first(503, cut_at)
    back_200 = watch.first(200, went_503 or restored_at)
    # Every event below a committed offset must have been in MongoDB when it was sampled.
    at = {(p, o): event_id for event_id, (p, o) in stream.acks.acked.items()}
    unwritten_below_commit = 0
    committed_during = 0
    for offsets, stored in samples:
        for partition, (committed, _high) in offsets.items():
            committed_during = max(committed_during, committed)
            for offset in range(max(committed, 0)):
                if at[(partition, offset)] not in stored:
                    unwritten_below_commit += 1
    ids = stored_event_ids(pipeline.token_usage)
    acked = set(stream.acks.acked)
    figures.update(
        events=count,
        outage_s=outage_s,
        stored_before_outage=stored_before,
        written_during_outage=stored_during - stored_before,
        offset_samples_during_outage=len(samples),
        unwritten_below_committed_offset=unwritten_below_commit,
        ready_503_after_cut_s=None if went_503 is None else round(went_503 - cut_at, 2),
        ready_200_after_restore_s=None if back_200 is None else round(back_200 - restored_at, 2),
        caught_up_after_restore_s=round(caught_up_s, 1),
        lost=len(acked - ids),
        documents=pipeline.token_usage.count_documents({}),
        proxy_refused=proxy.refused,
    )
    assert len(acked) == count
    assert ids == acked
    assert figures["documents"] == count
    assert stored_during == stored_before, "MongoDB was reachable through the cut proxy"
    assert samples
    assert unwritten_below_commit == 0
    assert went_503 is not None
    assert went_503 - cut_at <= 5.0
    assert back_200 is not None
    assert back_200 - restored_at <= 10.0
