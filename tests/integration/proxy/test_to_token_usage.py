"""Proxy to processor: real requests end as priced token_usage documents with their tenant."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gpucost.report.source import read_report
from integration.proxy.helpers import chat
from support.pipeline import Pipeline, wait_until
from support.proxy_process import ProxyProcess

pytestmark = pytest.mark.integration


def test_the_processor_stores_and_prices_the_tenant(
    proxy_factory: Callable[..., ProxyProcess], pipeline_factory: Any, mongodb_uri: str
) -> None:
    pipeline: Pipeline = pipeline_factory(window_s=2.0)
    pipeline.start()
    proxy = proxy_factory(topic=pipeline.topic)
    with httpx.Client(timeout=60) as client:
        for key, stream in (("sk-team-a", False), ("sk-team-b", True), ("sk-team-a", True)):
            answer = client.post(
                f"{proxy.url}/v1/chat/completions",
                json=chat(max_tokens=5, stream=stream),
                headers={"authorization": f"Bearer {key}"},
            )
            assert answer.status_code == 200
    wait_until(
        lambda: pipeline.token_usage.count_documents({"costed": True}) == 3,
        timeout=90,
        what="three costed token_usage documents",
    )
    docs = list(pipeline.token_usage.find({}))
    assert sorted(d["tenant"] for d in docs) == ["team-a", "team-a", "team-b"]
    assert all(d["allocated_cost_usd"] > 0 and d["completion_tokens"] == 5 for d in docs)
    assert {d["node"] for d in docs} == {"gpu-node-1"}

    # And the report divides the cost by tenant: per token and per request.
    report = read_report(
        mongodb_uri, since_s=600, now=time.time(), by="tenant", prefix=pipeline.prefix
    )
    rows = {row.key: row for row in report.rows}
    assert sorted(rows) == ["team-a", "team-b"]
    assert (rows["team-a"].requests, rows["team-b"].requests) == (2, 1)
    for row in rows.values():
        assert row.usd_per_request is not None
        assert row.usd_per_request > 0
        assert row.usd_per_million_tokens is not None
    assert report.total.cost_usd == pytest.approx(sum(d["allocated_cost_usd"] for d in docs))
