"""`gpucost report` against the real MongoDB-wire server: windows and usage written as
the processor writes them, read back by the library and by the CLI (`--json`, `--png`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from gpucost.report.source import read_report
from gpucost.report.summary import NoData
from support.png import assert_sensible_png
from support.report_docs import PRICE, usage, window

pytestmark = pytest.mark.integration

WINDOWS = 6
"""Per GPU; each 10 s window costs $0.01 at PRICE ($3.6/h)."""


def _insert(ns: Any, now: float) -> dict[str, Any]:
    """Two GPUs, two models; one old window outside --since; one uncosted event."""
    start = (now // 10) * 10 - 10 * WINDOWS
    windows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for k in range(WINDOWS):
        for gpu in ("0", "1"):
            w = window(gpu, start + 10 * k, prompt=600, completion=400, util=50.0 + k)
            windows.append(w)
            # 750 tokens of model a, 250 of b, in every window: a is allocated 3/4.
            cpt = w["cost_per_token"]
            events.append(
                usage(
                    f"{gpu}-{k}-a",
                    "a",
                    w["window_start"],
                    prompt=450,
                    completion=300,
                    gpu=gpu,
                    cost_per_token=cpt,
                )
            )
            events.append(
                usage(
                    f"{gpu}-{k}-b",
                    "b",
                    w["window_start"],
                    prompt=150,
                    completion=100,
                    gpu=gpu,
                    cost_per_token=cpt,
                )
            )
    windows.append(window("0", start - 7200))  # two hours earlier: outside --since 1h
    events.append(usage("late", "b", start + 10 * WINDOWS, prompt=5, completion=5))  # no window yet
    with MongoClient(ns.uri, serverSelectionTimeoutMS=5000) as client:
        db = client[ns.database]
        db[ns.collection("gpu_metrics")].insert_many(windows)
        db[ns.collection("token_usage")].insert_many(events)
    return {"start": start}


def test_report_per_gpu_from_the_server(mongo_namespace: Any) -> None:
    now = time.time()
    _insert(mongo_namespace, now)
    report = read_report(
        mongo_namespace.uri, since_s=3600, now=now, by="gpu", prefix=mongo_namespace.prefix
    )
    assert [r.key for r in report.rows] == ["node-a/0", "node-a/1"]
    assert len(report.windows) == 2 * WINDOWS  # the old window is outside --since
    for row in report.rows:
        assert row.windows == WINDOWS
        assert row.total_tokens == 1000 * WINDOWS
        assert row.cost_usd == pytest.approx(0.01 * WINDOWS)
        assert row.usd_per_million_tokens == pytest.approx(10.0)
        assert row.usd_per_million_output_tokens == pytest.approx(25.0)
        assert row.joules_per_token == pytest.approx(2.0)
        assert row.mean_power_w == pytest.approx(200.0)
        assert row.mean_gpu_util_pct == pytest.approx(52.5)
    assert report.total.cost_usd == pytest.approx(0.02 * WINDOWS)
    assert report.stored_prices_per_hour_usd == [PRICE]


def test_report_per_model_is_grouped_in_the_server(mongo_namespace: Any) -> None:
    now = time.time()
    _insert(mongo_namespace, now)
    report = read_report(
        mongo_namespace.uri, since_s=3600, now=now, by="model", prefix=mongo_namespace.prefix
    )
    a, b = report.rows
    assert (a.key, b.key) == ("a", "b")
    assert a.requests == 2 * WINDOWS
    assert a.total_tokens == 750 * 2 * WINDOWS
    assert a.cost_usd == pytest.approx(0.0075 * 2 * WINDOWS)
    assert b.cost_usd == pytest.approx(0.0025 * 2 * WINDOWS)
    assert b.requests == 2 * WINDOWS + 1  # the late event is counted...
    assert report.uncosted_events == 1  # ...and said to be uncosted
    # Shares add up to the windows that had tokens.
    assert report.total.cost_usd == pytest.approx(0.02 * WINDOWS)

    what_if = read_report(
        mongo_namespace.uri,
        since_s=3600,
        now=now,
        by="model",
        price_per_hour_usd=2 * PRICE,
        prefix=mongo_namespace.prefix,
    )
    assert what_if.total.cost_usd == pytest.approx(2 * report.total.cost_usd)
    assert what_if.rows[0].usd_per_million_tokens == pytest.approx(20.0)


def test_nothing_stored_is_no_data(mongo_namespace: Any) -> None:
    with pytest.raises(NoData, match="no gpu_metrics windows"):
        read_report(mongo_namespace.uri, since_s=60, now=time.time(), prefix=mongo_namespace.prefix)


def _cli(ns: Any, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MONGODB_URI": ns.uri,
        "MONGODB_COLLECTION_PREFIX": ns.prefix,
        "COLUMNS": "80",
    }
    return subprocess.run(
        [sys.executable, "-m", "gpucost", "report", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )


def test_cli_json_and_png(mongo_namespace: Any, tmp_path: Path) -> None:
    _insert(mongo_namespace, time.time())
    done = _cli(mongo_namespace, tmp_path, "--since", "1h", "--json", "--png", "cost.png")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["windows"] == 2 * WINDOWS
    assert data["gpus"] == ["node-a/0", "node-a/1"]
    assert data["total"]["total_tokens"] == 2000 * WINDOWS
    assert data["total"]["usd_per_million_tokens"] == pytest.approx(10.0)
    assert "wrote cost.png" in done.stderr
    assert_sensible_png(tmp_path / "cost.png")


def test_cli_table_per_model_with_a_what_if_price(mongo_namespace: Any, tmp_path: Path) -> None:
    _insert(mongo_namespace, time.time())
    done = _cli(mongo_namespace, tmp_path, "--by", "model", "--price-per-hour", "7.2")
    assert done.returncode == 0, done.stderr
    assert "what-if $7.2 (stored $3.6) per GPU-hour" in done.stdout
    assert "1 event is in windows not costed yet" in done.stdout
    rows = {
        line.split()[0]: line.split()
        for line in done.stdout.splitlines()
        if line[:2] in ("a ", "b ")
    }
    assert rows["a"][6] == "20.00"  # $/1M tokens at twice the price
    assert max(len(line) for line in done.stdout.splitlines()) <= 80


def test_cli_empty_is_one_line(mongo_namespace: Any, tmp_path: Path) -> None:
    done = _cli(mongo_namespace, tmp_path, "--since", "5m")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: no gpu_metrics windows in the last 300 s")
