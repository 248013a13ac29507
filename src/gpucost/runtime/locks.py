"""Shared/exclusive locks per key, held only while in use.

Inserts into a window share its lock, so batches of one window are written side by side;
the window's cost write holds it alone, so no event lands between the window's count and
its shares. A waiting exclusive holder goes first: new shared holders queue behind it,
so a steady stream of inserts cannot keep a window from being costed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable, Iterable


class _Gate:
    """One key's lock. Waiters sleep on futures and re-check when anything changes."""

    __slots__ = ("exclusive", "exclusive_waiting", "shared", "users", "waiters")

    def __init__(self) -> None:
        self.shared = 0
        self.exclusive = False
        self.exclusive_waiting = 0
        self.users = 0
        self.waiters: list[asyncio.Future[None]] = []

    def _free(self, shared: bool) -> bool:
        if shared:
            return not self.exclusive and not self.exclusive_waiting
        return not self.exclusive and not self.shared

    async def acquire(self, shared: bool) -> None:
        if not shared:
            self.exclusive_waiting += 1
        try:
            while not self._free(shared):
                waiter = asyncio.get_running_loop().create_future()
                self.waiters.append(waiter)
                try:
                    await waiter
                finally:
                    with contextlib.suppress(ValueError):
                        self.waiters.remove(waiter)
        except BaseException:
            if not shared:
                self.exclusive_waiting -= 1
                # A cancelled exclusive waiter no longer holds shared holders back.
                self._wake()
            raise
        if shared:
            self.shared += 1
        else:
            self.exclusive_waiting -= 1
            self.exclusive = True

    def release(self, shared: bool) -> None:
        if shared:
            self.shared -= 1
        else:
            self.exclusive = False
        self._wake()

    def _wake(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)


class KeyedLocks:
    def __init__(self) -> None:
        self._gates: dict[Hashable, _Gate] = {}

    @contextlib.asynccontextmanager
    async def hold(self, keys: Iterable[Hashable], *, shared: bool = False) -> AsyncIterator[None]:
        # One global order for every holder, so two holders of overlapping keys
        # cannot each wait for the other.
        ordered = sorted(set(keys), key=repr)
        gates = [self._gates.setdefault(key, _Gate()) for key in ordered]
        for gate in gates:
            gate.users += 1
        acquired: list[_Gate] = []
        try:
            for gate in gates:
                await gate.acquire(shared)
                acquired.append(gate)
            yield
        finally:
            for gate in reversed(acquired):
                gate.release(shared)
            for key, gate in zip(ordered, gates, strict=True):
                gate.users -= 1
                if not gate.users:
                    del self._gates[key]

    def held(self) -> list[Hashable]:
        """Keys someone holds or waits for now."""
        return list(self._gates)

    def __len__(self) -> int:
        return len(self._gates)
