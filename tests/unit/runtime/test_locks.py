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


async def test_shared_holders_hold_a_key_together_and_exclusive_waits_for_them() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    release = asyncio.Event()

    async def insert(name: str) -> None:
        async with locks.hold(["w"], shared=True):
            order.append(f"{name} in")
            await release.wait()
            order.append(f"{name} out")

    async def cost() -> None:
        async with locks.hold(["w"]):
            order.append("cost")

    inserts = [asyncio.create_task(insert("i1")), asyncio.create_task(insert("i2"))]
    await asyncio.sleep(0)
    costing = asyncio.create_task(cost())
    await asyncio.sleep(0)
    assert order == ["i1 in", "i2 in"]
    release.set()
    await asyncio.gather(*inserts, costing)
    assert order[-1] == "cost"
    assert len(locks) == 0


async def test_a_waiting_exclusive_holder_goes_before_new_shared_holders() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    release = asyncio.Event()

    async def first_insert() -> None:
        async with locks.hold(["w"], shared=True):
            await release.wait()

    async def cost() -> None:
        async with locks.hold(["w"]):
            order.append("cost")

    async def later_insert() -> None:
        async with locks.hold(["w"], shared=True):
            order.append("later insert")

    first = asyncio.create_task(first_insert())
    await asyncio.sleep(0)
    costing = asyncio.create_task(cost())
    await asyncio.sleep(0)
    later = asyncio.create_task(later_insert())
    await asyncio.sleep(0)
    assert order == []  # the later insert queues behind the waiting cost write
    release.set()
    await asyncio.gather(first, costing, later)
    assert order == ["cost", "later insert"]


async def test_a_cancelled_exclusive_waiter_lets_shared_holders_in() -> None:
    locks = KeyedLocks()
    release = asyncio.Event()
    entered = asyncio.Event()

    async def first_insert() -> None:
        async with locks.hold(["w"], shared=True):
            await release.wait()

    async def cost() -> None:
        async with locks.hold(["w"]):
            pass

    async def later_insert() -> None:
        async with locks.hold(["w"], shared=True):
            entered.set()

    first = asyncio.create_task(first_insert())
    await asyncio.sleep(0)
    costing = asyncio.create_task(cost())
    await asyncio.sleep(0)
    later = asyncio.create_task(later_insert())
    await asyncio.sleep(0)
    costing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await costing
    await asyncio.wait_for(entered.wait(), 1)
    release.set()
    await asyncio.gather(first, later)
    assert len(locks) == 0
