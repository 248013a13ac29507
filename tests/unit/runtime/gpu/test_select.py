from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pynvml
import pytest

from gpucost.errors import ConfigError, ExitStatus
from gpucost.runtime.gpu import GpuSourceUnavailable, open_source

pytestmark = pytest.mark.unit

HEADER = "timestamp, index, uuid, name, power.draw [W]"
ROW = "2026/11/26 21:39:14.326, 0, GPU-x, NVIDIA H200, 79.99 W"


@pytest.fixture
def no_nvml(monkeypatch: pytest.MonkeyPatch, make_nvml: Any) -> None:
    """NVML as on a host without the driver: the library is there, nvmlInit fails."""
    broken = make_nvml(1, init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    monkeypatch.setitem(sys.modules, "pynvml", broken)


@pytest.fixture
def no_smi(tmp_path: Path, only_path: Callable[[Path], None]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    only_path(empty)


def test_unknown_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown GPU source 'cuda'") as caught:
        open_source("cuda")
    assert caught.value.exit_status == ExitStatus.USAGE
    assert caught.value.hint is not None
    assert "auto, nvml, smi, seed" in caught.value.hint


@pytest.mark.usefixtures("no_nvml", "no_smi")
def test_auto_falls_to_seed_and_says_why() -> None:
    source, notes = open_source("auto", clock=lambda: 7.0)
    assert source.name == "seed"
    assert len(notes) == 2
    assert notes[0].startswith("nvml: nvmlInit failed: NVML Shared Library Not Found")
    assert notes[1].startswith("smi: nvidia-smi not found on PATH")
    assert source.read()[0].t == 7.0


def test_auto_prefers_nvml(monkeypatch: pytest.MonkeyPatch, make_nvml: Any) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", make_nvml(2))
    source, notes = open_source("auto")
    assert source.name == "nvml"
    assert notes == []
    assert len(source.read()) == 2
    source.close()


@pytest.mark.usefixtures("no_nvml")
def test_auto_takes_smi_when_nvml_is_missing(
    fake_smi: Callable[[str], Path], only_path: Callable[[Path], None]
) -> None:
    only_path(fake_smi(f"print({HEADER!r}); print({ROW!r})"))
    source, notes = open_source("auto")
    assert source.name == "smi"
    assert [n.split(":")[0] for n in notes] == ["nvml"]


@pytest.mark.usefixtures("no_nvml", "no_smi")
def test_named_source_never_falls_back() -> None:
    with pytest.raises(GpuSourceUnavailable, match="nvmlInit failed"):
        open_source("nvml")
    with pytest.raises(GpuSourceUnavailable, match="not found on PATH"):
        open_source("smi")


@pytest.mark.usefixtures("no_nvml", "no_smi")
def test_auto_with_nothing_left_lists_every_reason(tmp_path: Path) -> None:
    with pytest.raises(GpuSourceUnavailable) as caught:
        open_source("auto", seed_path=tmp_path / "missing.json")
    message = caught.value.message
    assert "nvml: " in message
    assert "smi: " in message
    assert "seed: seed trace file not found" in message


def test_seed_by_name_uses_the_given_trace_and_clock(tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    trace.write_text('{"meta": {"gpu": {"name": "G"}}, "samples": [{"t": 1.0, "power_mw": 5}]}')
    source, notes = open_source(" Seed ", seed_path=trace, clock=lambda: 3.0)
    assert notes == []
    (sample,) = source.read()
    assert (sample.gpu_name, sample.power_w, sample.t) == ("G", 0.005, 3.0)
