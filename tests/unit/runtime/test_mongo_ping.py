import asyncio
from typing import Any
from unittest.mock import MagicMock

import pytest
from pymongo import _csot

from gpucost.runtime.mongo import MongoStore

pytestmark = pytest.mark.unit


class Admin:
    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    async def command(self, name: str) -> dict[str, Any]:
        assert name == "ping"
        self.timeouts.append(_csot.get_timeout())
        return {"ok": 1}


def test_ping_is_bounded_by_the_driver_not_by_cancelling_it() -> None:
    # Reliability case 2: asyncio.wait_for around the ping cancelled the driver mid server
    # selection during a MongoDB outage; a later insert then died with "cannot wait on
    # un-acquired lock" and took the processor down.
    client = MagicMock()
    client.admin = Admin()
    store = MongoStore(client, "gpucost")
    asyncio.run(store.ping(timeout_s=2.0))
    asyncio.run(store.ping())
    first, second = client.admin.timeouts
    assert first is not None
    assert 0 < first <= 2.0
    assert second is None
