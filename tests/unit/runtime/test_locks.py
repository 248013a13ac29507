import asyncio

import pytest

from gpucost.runtime.locks import KeyedLocks

pytestmark = pytest.mark.unit


async def test_holders_of_one_key_take_turns_and_other_keys_go_on() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    release_a = asyncio.Event()

    async def hold_a() -> None:
        async with locks.hold(["a"]):
            order.append("a1 in")
            await release_a.wait()
            order.append("a1 out")

    async def hold_a_again() -> None:
        async with locks.hold(["a", "b"]):
            order.append("a2 in")

    async def hold_c() -> None:
        async with locks.hold(["c"]):
            order.append("c in")

    first = asyncio.create_task(hold_a())
    await asyncio.sleep(0)
    second = asyncio.create_task(hold_a_again())
    await hold_c()
    await asyncio.sleep(0)
    assert order == ["a1 in", "c in"]
    release_a.set()
    await asyncio.gather(first, second)
    assert order == ["a1 in", "c in", "a1 out", "a2 in"]
    assert len(locks) == 0


async def test_a_cancelled_waiter_leaves_no_lock_behind() -> None:
    locks = KeyedLocks()
    gate = asyncio.Event()

    async def holder() -> None:
        async with locks.hold(["k"]):
            await gate.wait()

    async def waiter() -> None:
        async with locks.hold(["k"]):
            pass

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.set()
    await held
    assert len(locks) == 0
