"""The processor's MongoDB side: idempotent event writes and window cost updates.

`token_usage` is keyed by event_id, with one index that finds a window's events.
`pending_windows` holds the windows that got events and were not written since: the
processor's to-do list, durable so that a restart finds it again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pymongo
from pymongo import ASCENDING, AsyncMongoClient, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, OperationFailure

from gpucost.runtime.cost import TokenTotals
from gpucost.runtime.documents import Document, window_filter
from gpucost.runtime.windows import WindowKey, start_s

DUPLICATE_KEY = 11000


@dataclass(frozen=True, slots=True)
class InsertOutcome:
    inserted: int
    duplicates: int


class MongoStore:
    """Both collections of one deployment. `prefix` isolates tests sharing a database."""

    def __init__(self, client: AsyncMongoClient[Document], database: str, prefix: str = "") -> None:
        self.client = client
        db = client[database]
        self.token_usage: AsyncCollection[Document] = db[f"{prefix}token_usage"]
        self.gpu_metrics: AsyncCollection[Document] = db[f"{prefix}gpu_metrics"]
        self.pending: AsyncCollection[Document] = db[f"{prefix}pending_windows"]

    async def ping(self, timeout_s: float | None = None) -> None:
        """`timeout_s` bounds the whole ping, server selection included. The driver
        enforces it itself: cancelling a driver call from outside (asyncio.wait_for) can
        leave its topology lock released under a waiter, and every later operation then
        fails with "cannot wait on un-acquired lock" (Python 3.11, PYTHON-5167)."""
        with pymongo.timeout(timeout_s):
            await self.client.admin.command("ping")

    async def ensure_indexes(self) -> None:
        window = [("node", ASCENDING), ("gpu", ASCENDING), ("window_start", ASCENDING)]
        for collection in (self.token_usage, self.gpu_metrics):
            # Before node was part of a GPU's identity the index had no node; it would
            # merge two hosts' GPU 0 into one window, so it goes.
            with contextlib.suppress(OperationFailure):
                await collection.drop_index("window")
        await self.token_usage.create_index(window, name="gpu_window")
        await self.gpu_metrics.create_index(window, name="gpu_window", unique=True)

    async def insert_events(self, docs: Sequence[Document]) -> InsertOutcome:
        """Insert all; an `_id` that exists already is counted as a duplicate, not an error."""
        if not docs:
            return InsertOutcome(0, 0)
        try:
            result = await self.token_usage.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            write_errors = error.details.get("writeErrors", [])
            others = [e for e in write_errors if e.get("code") != DUPLICATE_KEY]
            if others:
                raise
            return InsertOutcome(int(error.details.get("nInserted", 0)), len(write_errors))
        return InsertOutcome(len(result.inserted_ids), 0)

    async def window_totals(self, key: WindowKey) -> TokenTotals:
        """Counted from the stored events, so redelivery and restarts can never double count."""
        pipeline: list[Document] = [
            {"$match": _filter(key)},
            {
                "$group": {
                    "_id": None,
                    "requests": {"$sum": 1},
                    "prompt": {"$sum": "$prompt_tokens"},
                    "completion": {"$sum": "$completion_tokens"},
                }
            },
        ]
        cursor = await self.token_usage.aggregate(pipeline)
        rows = await cursor.to_list(length=1)
        if not rows:
            return TokenTotals(0, 0, 0)
        row = rows[0]
        return TokenTotals(int(row["requests"]), int(row["prompt"]), int(row["completion"]))

    async def stored_window(self, key: WindowKey) -> Document | None:
        return await self.gpu_metrics.find_one(_filter(key))

    async def last_written_ms(self, node: str, gpu: str) -> int | None:
        """Start, in ms, of the newest window of this GPU in `gpu_metrics`, if any."""
        doc = await self.gpu_metrics.find_one(
            {"node": node, "gpu": gpu}, sort=[("window_start", -1)], projection={"window_start": 1}
        )
        return None if doc is None else round(float(doc["window_start"]) * 1000)

    async def write_window(self, doc: Document, writer: str) -> None:
        """Upsert a window; `written_by` collects every processor that ever wrote it."""
        key = window_filter(doc["node"], doc["gpu"], doc["window_start"])
        await self.gpu_metrics.update_one(
            key,
            {"$set": doc, "$inc": {"revision": 1}, "$addToSet": {"written_by": writer}},
            upsert=True,
        )

    async def apply_window_cost(self, key: WindowKey, cost_per_token: float | None) -> int:
        """Give every event of the window its share: tokens × the window's cost per token,
        which equals window cost × tokens / window tokens. One server-side update."""
        allocated: Any = {"$multiply": ["$total_tokens", cost_per_token]}
        if cost_per_token is None:
            allocated = None
        result = await self.token_usage.update_many(
            _filter(key),
            [
                {
                    "$set": {
                        "cost_per_token": cost_per_token,
                        "allocated_cost_usd": allocated,
                        "costed": True,
                    }
                }
            ],
        )
        return int(result.modified_count)

    async def mark_pending(self, keys: set[WindowKey], partitions: dict[str, int]) -> None:
        """Record windows that got events, with the partition their node's events are
        read from: the processor that owns that partition next (after a restart or a
        rebalance) finds them here and writes them."""
        if not keys:
            return
        await self.pending.bulk_write(
            [
                UpdateOne(
                    {"_id": _pending_id(key)},
                    {
                        "$set": {
                            "node": key[0],
                            "gpu": key[1],
                            "window_start_ms": key[2],
                            "partition": partitions.get(key[0]),
                        }
                    },
                    upsert=True,
                )
                for key in sorted(keys)
            ],
            ordered=False,
        )

    async def clear_pending(self, key: WindowKey) -> None:
        await self.pending.delete_one({"_id": _pending_id(key)})

    async def pending_windows(self, partitions: set[int] | None = None) -> list[WindowKey]:
        """Windows with events not written since; only those of `partitions` if given."""
        query: Document = {} if partitions is None else {"partition": {"$in": sorted(partitions)}}
        return [
            (doc["node"], doc["gpu"], int(doc["window_start_ms"]))
            async for doc in self.pending.find(query)
        ]


def _filter(key: WindowKey) -> Document:
    return window_filter(key[0], key[1], start_s(key))


def _pending_id(key: WindowKey) -> str:
    return f"{key[0]}|{key[1]}|{key[2]}"
