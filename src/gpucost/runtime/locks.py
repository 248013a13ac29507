"""One asyncio lock per key, held only while in use: windows being written exclude
inserts into the same window and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Hashable, Iterable


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._users: Counter[Hashable] = Counter()

    @contextlib.asynccontextmanager
    async def hold(self, keys: Iterable[Hashable]) -> AsyncIterator[None]:
        # One global order for every holder, so two holders of overlapping keys
        # cannot each wait for the other.
        ordered = sorted(set(keys), key=repr)
        for key in ordered:
            self._users[key] += 1
            self._locks.setdefault(key, asyncio.Lock())
        acquired: list[Hashable] = []
        try:
            for key in ordered:
                await self._locks[key].acquire()
                acquired.append(key)
            yield
        finally:
            for key in reversed(acquired):
                self._locks[key].release()
            for key in ordered:
                self._users[key] -= 1
                if not self._users[key]:
                    del self._users[key]
                    del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)
