"""Sizes for the reliability tests: CI's default, or the issue's figures when
GPUCOST_RELIABILITY_FULL=1 (slower; see docs/reliability.md)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Sizes:
    kill_events: int
    kills: int
    outage_s: float
    bad_events: int
    good_events: int


CI = Sizes(kill_events=20_000, kills=5, outage_s=30.0, bad_events=10_000, good_events=10_000)
FULL = Sizes(kill_events=100_000, kills=5, outage_s=30.0, bad_events=10_000, good_events=10_000)


@pytest.fixture(scope="session")
def sizes() -> Sizes:
    return FULL if os.environ.get("GPUCOST_RELIABILITY_FULL") == "1" else CI


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
