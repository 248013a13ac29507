"""What the reliability tests share: the figures each one records for docs/reliability.md."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """What a test measured. Printed (`-s` shows it) and, with GPUCOST_RELIABILITY_REPORT
    set to a path, appended there as one JSON line per test for docs/reliability.md."""
    seen: dict[str, Any] = {}
    started = time.monotonic()
    yield seen
    seen["test"] = request.node.name
    seen["test_wall_s"] = round(time.monotonic() - started, 1)
    line = json.dumps(seen, sort_keys=True)
    print(f"\nfigures: {line}")
    report = os.environ.get("GPUCOST_RELIABILITY_REPORT")
    if report:
        with Path(report).open("a") as out:
            out.write(line + "\n")
