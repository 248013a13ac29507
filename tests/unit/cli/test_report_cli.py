"""`gpucost report` through the real app: bad input is one line and exit 2, before any
database is touched; no MONGODB_URI and no deployment says so in one line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from gpucost.errors import ExitStatus
from gpucost.report import source as report_source
from gpucost.report.summary import Report, summarize
from support.cli import gpucost, one_error_line
from support.png import assert_sensible_png
from support.report_docs import window

pytestmark = pytest.mark.unit


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory: no gpucost.toml, no .gpucost/, no MONGODB_URI."""
    monkeypatch.chdir(tmp_path)
    for name in ("MONGODB_URI", "GPUCOST_CONFIG", "GPUCOST_DEPLOYMENT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize("since", ["1x", "abc", "0h", "-5m", ""])
def test_bad_since_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, workdir: Path, since: str
) -> None:
    out = gpucost(monkeypatch, "report", "--since", since, env={"MONGODB_URI": "mongodb://x"})
    assert out.code == ExitStatus.USAGE
    assert "--since" in one_error_line(out)


def test_bad_by_and_bad_price_are_exit_2(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    env = {"MONGODB_URI": "mongodb://x"}
    out = gpucost(monkeypatch, "report", "--by", "node", env=env)
    assert out.code == ExitStatus.USAGE
    assert "--by" in one_error_line(out)
    out = gpucost(monkeypatch, "report", "--price-per-hour", "-1", env=env)
    assert out.code == ExitStatus.USAGE
    assert "--price-per-hour" in one_error_line(out)


def test_missing_mongodb_uri_is_one_line(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    out = gpucost(monkeypatch, "report")
    assert out.code == ExitStatus.USAGE
    line = one_error_line(out)
    assert "MONGODB_URI is not set" in line
    assert ".gpucost/main" in line


def test_a_deployment_without_inventory_is_one_line(
    monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    (workdir / ".gpucost" / "demo").mkdir(parents=True)
    out = gpucost(monkeypatch, "report", "--deployment", "demo")
    assert out.code == ExitStatus.ERROR
    assert "inventory.json" in one_error_line(out)


def test_unreachable_database_is_one_line(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    monkeypatch.setattr(report_source, "SERVER_SELECTION_MS", 300)
    # Port 9 (discard) on loopback: refused at once, nothing listens there.
    out = gpucost(monkeypatch, "report", env={"MONGODB_URI": "mongodb://127.0.0.1:9/gpucost"})
    assert out.code == ExitStatus.ERROR
    assert "cannot read the pipeline's collections" in one_error_line(out)


# ---- rendering, with the database read replaced -------------------------------------


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> dict[str, Any]:
    """`read_report` answers from hand-made windows; records how it was called."""
    calls: dict[str, Any] = {}
    now = time.time()

    def fake_read_report(uri: str, **kwargs: Any) -> Report:
        calls.update(kwargs, uri=uri)
        windows = [window(g, now - 60 + 10 * k) for k in range(3) for g in "01"]
        return summarize(windows, by=kwargs["by"], price_per_hour_usd=kwargs["price_per_hour_usd"])

    monkeypatch.setattr(report_source, "read_report", fake_read_report)
    monkeypatch.setenv("MONGODB_URI", "mongodb://user:secret@127.0.0.1:1/gpucost")
    return calls


def test_table_fits_80_columns(monkeypatch: pytest.MonkeyPatch, stored: dict[str, Any]) -> None:
    out = gpucost(monkeypatch, "report", "--since", "15m", env={"COLUMNS": "80"})
    assert out.code == 0, out.stderr
    assert stored["since_s"] == 900
    assert stored["uri"].startswith("mongodb://user:secret@")
    lines = out.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert "…" not in out.stdout  # nothing truncated
    assert any(line.startswith("all ") for line in lines)
    assert "$3.6 per GPU-hour" in out.stdout


def test_json_is_all_that_stdout_holds(
    monkeypatch: pytest.MonkeyPatch, stored: dict[str, Any], workdir: Path
) -> None:
    out = gpucost(monkeypatch, "report", "--json", "--price-per-hour", "7.2", "--png", "c.png")
    assert out.code == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["what_if_price_per_hour_usd"] == 7.2
    assert data["total"]["cost_usd"] == pytest.approx(6 * 0.02)
    assert [r["key"] for r in data["rows"]] == ["node-a/0", "node-a/1"]
    assert "wrote c.png" in out.stderr
    assert_sensible_png(workdir / "c.png")


def test_by_model_is_passed_through(
    monkeypatch: pytest.MonkeyPatch, stored: dict[str, Any]
) -> None:
    out = gpucost(monkeypatch, "report", "--by", "model", "--json")
    assert out.code == 0, out.stderr
    assert stored["by"] == "model"
    assert json.loads(out.stdout)["by"] == "model"


def test_help_has_an_example(monkeypatch: pytest.MonkeyPatch) -> None:
    out = gpucost(monkeypatch, "report", "--help")
    assert out.code == 0
    assert "Example:" in out.stdout
    for option in ("--since", "--by", "--json", "--png", "--price-per-hour", "--deployment"):
        assert option in out.stdout


def test_by_tenant_is_passed_through(
    monkeypatch: pytest.MonkeyPatch, stored: dict[str, Any]
) -> None:
    out = gpucost(monkeypatch, "report", "--by", "tenant", "--json")
    assert out.code == 0, out.stderr
    assert stored["by"] == "tenant"
    assert json.loads(out.stdout)["by"] == "tenant"
