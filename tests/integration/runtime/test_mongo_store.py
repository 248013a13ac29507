"""MongoStore against the real MongoDB-wire server: every query keyed by the GPU's
identity (node, gpu, window), so two nodes' GPU 0 never touch each other's documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import ASCENDING, AsyncMongoClient

from gpucost.runtime.mongo import MongoStore

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

START_MS = 1_800_000_000_000
START = START_MS / 1000


def usage(event_id: str, node: str, tokens: int = 100) -> dict[str, Any]:
    return {
        "_id": event_id,
        "event_id": event_id,
        "node": node,
        "gpu": "0",
        "window_start": START,
        "prompt_tokens": tokens,
        "completion_tokens": 0,
        "total_tokens": tokens,
        "costed": False,
    }


@pytest.fixture
async def store(mongo_namespace: Any) -> AsyncIterator[MongoStore]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_namespace.uri)
    store = MongoStore(client, mongo_namespace.database, mongo_namespace.prefix)
    yield store
    await client.close()


async def test_an_old_gpu_window_index_without_node_is_replaced(store: MongoStore) -> None:
    old = [("gpu", ASCENDING), ("window_start", ASCENDING)]
    await store.gpu_metrics.create_index(old, name="window", unique=True)
    await store.ensure_indexes()
    await store.ensure_indexes()  # safe to run again
    indexes = await store.gpu_metrics.index_information()
    assert "window" not in indexes
    assert indexes["gpu_window"]["key"] == [("node", 1), ("gpu", 1), ("window_start", 1)]
    # The same GPU index and window on two nodes: two documents, not a conflict.
    for node in ("a", "b"):
        doc = {"node": node, "gpu": "0", "window_start": START, "cost_usd": 1.0}
        await store.write_window(doc, writer="test")
    assert await store.gpu_metrics.count_documents({}) == 2


async def test_window_totals_and_costs_stay_on_their_node(store: MongoStore) -> None:
    await store.ensure_indexes()
    await store.insert_events([usage("a1", "a"), usage("a2", "a"), usage("b1", "b", 50)])
    totals = await store.window_totals(("a", "0", START_MS))
    assert (totals.requests, totals.total_tokens) == (2, 200)
    assert (await store.window_totals(("b", "0", START_MS))).total_tokens == 50
    changed = await store.apply_window_cost(("a", "0", START_MS), 0.01)
    assert changed == 2
    b1 = await store.token_usage.find_one({"_id": "b1"})
    assert b1 is not None
    assert b1["costed"] is False


async def test_a_window_records_each_writer_and_counts_its_revisions(store: MongoStore) -> None:
    await store.ensure_indexes()
    doc = {"node": "a", "gpu": "0", "window_start": START, "cost_usd": 1.0}
    await store.write_window(doc, writer="p1")
    await store.write_window(doc, writer="p1")
    await store.write_window(doc, writer="p2")
    stored = await store.stored_window(("a", "0", START_MS))
    assert stored is not None
    assert stored["revision"] == 3
    assert stored["written_by"] == ["p1", "p2"]
    assert await store.last_written_ms("a", "0") == START_MS
    assert await store.last_written_ms("b", "0") is None


async def test_pending_marks_are_per_gpu_and_found_by_partition(store: MongoStore) -> None:
    a, b = ("a", "0", START_MS), ("b", "0", START_MS)
    await store.mark_pending({a, b}, {"a": 0, "b": 2})
    assert sorted(await store.pending_windows()) == [a, b]
    assert await store.pending_windows({2}) == [b]
    # Clearing one node's window leaves the other node's mark for the same GPU and time.
    await store.clear_pending(a)
    assert await store.pending_windows() == [b]
