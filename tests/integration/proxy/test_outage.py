"""A 30 s broker outage: requests go on, events wait on disk, then arrive exactly once.

The shared broker stays up: the proxy reaches it through a Kafka-aware TCP proxy that
the test cuts, so only this proxy loses the broker.
"""

from __future__ import annotations

import stat
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from integration.proxy.helpers import chat, proxy_events
from support.kafka_proxy import KafkaCutProxy
from support.pipeline import wait_until
from support.proxy_process import ProxyProcess

pytestmark = pytest.mark.integration
OUTAGE_S = 30.0
BEFORE = 3
DURING = 10


def test_a_broker_outage_loses_no_event_and_holds_up_no_request(
    proxy_factory: Callable[..., ProxyProcess],
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
) -> None:
    host, port = kafka_bootstrap.rsplit(":", 1)
    topic = kafka_topic_factory(partitions=1)
    with KafkaCutProxy((host, int(port)), lifetime_s=OUTAGE_S + 240) as link:
        proxy = proxy_factory(
            topic=topic,
            bootstrap=f"127.0.0.1:{link.port}",
            PROXY_TENANT_HEADER="X-Request-Tag",
            PROXY_DELIVERY_TIMEOUT_S="2",
        )
        with httpx.Client(timeout=60) as client:

            def send(tag: str) -> None:
                answer = client.post(
                    f"{proxy.url}/v1/chat/completions",
                    json=chat(max_tokens=4),
                    headers={"x-request-tag": tag},
                )
                assert answer.status_code == 200

            for i in range(BEFORE):
                send(f"before-{i}")
            wait_until(
                lambda: proxy.metric("gpucost_proxy_events_published_total") == BEFORE,
                timeout=60,
                what="events before the outage acknowledged",
            )
            assert link.rewritten > 0, "the proxy's client went around the cut"

            link.cut()
            cut_at = time.monotonic()
            for i in range(DURING):
                send(f"during-{i}")
                time.sleep(OUTAGE_S / DURING / 2)
            # Structural, not a benchmark: every request of the outage came back while
            # the broker was still away, so none waited for it.
            assert time.monotonic() - cut_at < OUTAGE_S
            wait_until(
                lambda: proxy.metric("gpucost_proxy_events_spooled_total") > 0,
                timeout=OUTAGE_S,
                what="events spooled during the outage",
            )
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))
            assert proxy.metric("gpucost_proxy_events_published_total") == BEFORE
            link.restore()

            wait_until(
                lambda: proxy.metric("gpucost_proxy_events_published_total") == BEFORE + DURING,
                timeout=120,
                what="spooled events replayed after the outage",
            )
            assert proxy.metric("gpucost_proxy_spool_events") == 0
            assert proxy.metric("gpucost_proxy_events_dropped_total") == 0

    events = proxy_events(kafka_bootstrap, topic, BEFORE + DURING, timeout=60)
    tags = Counter(e.tenant for e in events)
    expected = {f"before-{i}" for i in range(BEFORE)} | {f"during-{i}" for i in range(DURING)}
    assert set(tags) == expected
    assert all(n == 1 for n in tags.values()), tags  # exactly once
    assert len({e.event_id for e in events}) == len(events)


def test_spooled_events_survive_a_proxy_restart(
    proxy_factory: Callable[..., ProxyProcess],
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
) -> None:
    """Stopped while the broker is away, the proxy keeps its events on disk and sends
    them when it starts again and the broker is back."""
    host, port = kafka_bootstrap.rsplit(":", 1)
    topic = kafka_topic_factory(partitions=1)
    with KafkaCutProxy((host, int(port)), lifetime_s=240) as link:
        proxy = proxy_factory(
            topic=topic,
            bootstrap=f"127.0.0.1:{link.port}",
            PROXY_TENANT_HEADER="X-Request-Tag",
            PROXY_DELIVERY_TIMEOUT_S="2",
        )
        link.cut()
        with httpx.Client(timeout=60) as client:
            for i in range(4):
                answer = client.post(
                    f"{proxy.url}/v1/chat/completions",
                    json=chat(max_tokens=3),
                    headers={"x-request-tag": f"r-{i}"},
                )
                assert answer.status_code == 200
        assert proxy.stop() == 0
        spool = Path(proxy.env["PROXY_SPOOL_DIR"]) / "events.jsonl"
        assert len(spool.read_bytes().splitlines()) == 4
        assert stat.S_IMODE(spool.stat().st_mode) == 0o600
        link.restore()
        proxy.start()
        wait_until(
            lambda: proxy.metric("gpucost_proxy_events_replayed_total") == 4,
            timeout=60,
            what="the spool replayed after the restart",
        )
    events = proxy_events(kafka_bootstrap, topic, 4)
    assert sorted(e.tenant or "" for e in events) == [f"r-{i}" for i in range(4)]
