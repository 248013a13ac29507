from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.runtime.gpu.base import GpuSourceUnavailable
from gpucost.runtime.gpu.smi import QUERY_FIELDS, SmiSource, parse_smi_csv, smi_argv
from gpucost.runtime.samples import GpuSample
from gpucost.runtime.trace import default_seed_path

pytestmark = pytest.mark.unit

MIB = 1 << 20
HEADER = (
    "timestamp, index, uuid, name, pstate, power.draw [W], power.limit [W], "
    "utilization.gpu [%], utilization.memory [%], memory.used [MiB], memory.total [MiB], "
    "temperature.gpu, clocks.current.sm [MHz], clocks.current.memory [MHz]"
)
ROW_GPU0 = (
    "2026/11/26 21:39:14.326, 0, GPU-701ef3e5-e139-92fe-6300-365ba25c89f9, NVIDIA H200, P0, "
    "79.99 W, 700.00 W, 0 %, 0 %, 0 MiB, 143771 MiB, 36, 345 MHz, 3201 MHz"
)
ROW_GPU1 = (
    "2026/11/26 21:39:14.327, 1, GPU-00000000-0000-0000-0000-000000000001, NVIDIA H100 80GB HBM3, "
    "P0, 312.50 W, 700.00 W, 97 %, 41 %, 70012 MiB, 81559 MiB, 61, 1980 MHz, 2619 MHz"
)


@pytest.fixture(scope="module")
def recorded(smi_csv: str) -> list[GpuSample]:
    return parse_smi_csv(smi_csv, tz=UTC)


def test_every_recorded_row_parses(smi_csv: str, recorded: list[GpuSample]) -> None:
    samples = recorded
    assert len(samples) == len(smi_csv.strip().splitlines()) - 1 == 341
    for s in samples:
        assert s.source == "smi"
        assert s.gpu_index == 0
        assert s.gpu_uuid == "GPU-701ef3e5-e139-92fe-6300-365ba25c89f9"
        assert s.gpu_name == "NVIDIA H200"
        assert s.energy_j is None  # nvidia-smi's query has no energy counter
        for value in (s.power_w, s.gpu_util_pct, s.mem_util_pct, s.temp_c, s.sm_clock_mhz):
            assert value is not None
        assert s.mem_used_bytes is not None
        assert s.mem_total_bytes is not None


def test_units_are_converted(recorded: list[GpuSample]) -> None:
    first = recorded[0]
    assert first.t == datetime(2026, 11, 26, 21, 39, 14, 326000, tzinfo=UTC).timestamp()
    assert first.power_w == pytest.approx(79.99)
    assert first.gpu_util_pct == 0.0
    assert first.mem_used_bytes == 0
    assert first.mem_total_bytes == 143771 * MIB
    assert first.temp_c == 36.0
    assert first.sm_clock_mhz == 345.0


def test_memory_total_agrees_with_nvml_on_the_same_gpu(
    recorded: list[GpuSample], recorded_probe: dict[str, Any]
) -> None:
    nvml_total = recorded_probe["mem"]["value"]["total"]
    assert {s.mem_total_bytes for s in recorded} == {nvml_total}


def test_recorded_timestamps_run_forward_inside_the_trace(recorded: list[GpuSample]) -> None:
    # The recording host ran on UTC; its smi loop sat inside the NVML trace's run.
    meta = json.loads(default_seed_path().read_text())["meta"]
    times = [s.t for s in recorded]
    assert times == sorted(times)
    assert meta["started"] - 1 < times[0]
    assert times[-1] < meta["ended"] + 1


def test_busy_rows_are_read(recorded: list[GpuSample]) -> None:
    busy = [s for s in recorded if s.gpu_util_pct]
    assert busy
    assert max(s.power_w or 0.0 for s in busy) > 150


def test_not_available_and_not_supported_become_none() -> None:
    row = (
        "2026/11/26 21:39:14.326, 0, GPU-x, NVIDIA H200, P0, [N/A], [N/A], [Not Supported], "
        "[Not Supported], [N/A], 143771 MiB, [N/A], [Unknown Error], N/A"
    )
    (sample,) = parse_smi_csv(f"{HEADER}\n{row}\n", tz=UTC)
    assert sample.power_w is None
    assert sample.gpu_util_pct is None
    assert sample.mem_util_pct is None
    assert sample.mem_used_bytes is None
    assert sample.temp_c is None
    assert sample.sm_clock_mhz is None
    assert sample.mem_total_bytes == 143771 * MIB


def test_columns_are_found_by_header_and_units_may_be_left_out() -> None:
    # --format=csv,nounits: units only in the header; columns in another order.
    text = (
        "index, memory.used [MiB], power.draw [W], timestamp\n1, 512, 250.5, 2026/11/26 21:39:14\n"
    )
    (sample,) = parse_smi_csv(text, tz=UTC)
    assert sample.gpu_index == 1
    assert sample.mem_used_bytes == 512 * MIB
    assert sample.power_w == 250.5
    assert sample.gpu_name is None


def test_two_gpus_give_two_samples() -> None:
    samples = parse_smi_csv(f"{HEADER}\n{ROW_GPU0}\n{ROW_GPU1}\n", tz=UTC)
    assert [s.gpu_index for s in samples] == [0, 1]
    assert samples[1].mem_used_bytes == 70012 * MIB
    assert samples[1].gpu_util_pct == 97.0


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("2026/11/26 21:39:14.326, 0, GPU-x", "line 2: 3 values"),
        (ROW_GPU0.replace("0 MiB", "0 MB"), "line 2: unexpected memory unit 'MB'"),
        (ROW_GPU0.replace("79.99 W", "79.99 kW"), "line 2: unexpected unit 'kW'"),
        (ROW_GPU0.replace("2026/11/26", "26.11.2026"), "line 2: unexpected timestamp"),
    ],
)
def test_malformed_rows_raise_with_their_line(row: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_smi_csv(f"{HEADER}\n{row}\n", tz=UTC)


def test_empty_output_has_no_samples() -> None:
    assert parse_smi_csv("") == []
    assert parse_smi_csv(HEADER + "\n") == []


@given(mib=st.integers(min_value=0, max_value=10**7))
def test_mib_values_become_exact_bytes(mib: int) -> None:
    row = ROW_GPU0.replace("0 MiB, 143771 MiB", f"{mib} MiB, 143771 MiB")
    (sample,) = parse_smi_csv(f"{HEADER}\n{row}\n", tz=UTC)
    assert sample.mem_used_bytes == mib * MIB


def test_argv_is_the_recorded_query() -> None:
    assert smi_argv("nvidia-smi") == [
        "nvidia-smi",
        "--query-gpu=timestamp,index,uuid,name,pstate,power.draw,power.limit,utilization.gpu,"
        "utilization.memory,memory.used,memory.total,temperature.gpu,clocks.sm,clocks.mem",
        "--format=csv",
    ]
    assert len(QUERY_FIELDS) == len(HEADER.split(","))


# The source, against an executable stand-in for nvidia-smi on PATH.

FakeSmi = Callable[[str], Path]


def test_source_runs_the_binary_and_stamps_its_own_clock(
    fake_smi: FakeSmi, only_path: Callable[[Path], None]
) -> None:
    expected_args = smi_argv("x")[1:]
    only_path(
        fake_smi(
            f"if sys.argv[1:] != {expected_args!r}: sys.exit(2)\n"
            f"print({HEADER!r}); print({ROW_GPU0!r}); print({ROW_GPU1!r})"
        )
    )
    ticks = iter([100.0, 101.0, 200.0, 200.5])
    source = SmiSource(clock=lambda: next(ticks))
    assert source.describe()["gpu_count"] == 2
    samples = source.read()
    assert [s.t for s in samples] == [200.25, 200.25]
    assert [s.gpu_index for s in samples] == [0, 1]
    assert samples[0].power_w == pytest.approx(79.99)
    gpus = source.describe()["gpus"]
    assert isinstance(gpus, list)
    assert gpus[0]["unsupported"] == ["energy_j"]
    assert gpus[0]["mig_mode"] is None
    source.close()


def test_missing_binary_is_unavailable(tmp_path: Path, only_path: Callable[[Path], None]) -> None:
    only_path(tmp_path)
    with pytest.raises(GpuSourceUnavailable, match="nvidia-smi not found on PATH"):
        SmiSource()


def test_failing_binary_is_unavailable_with_its_words(
    fake_smi: FakeSmi, only_path: Callable[[Path], None]
) -> None:
    words = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    only_path(fake_smi(f"print({words!r}); sys.exit(9)"))
    with pytest.raises(GpuSourceUnavailable, match="exited 9: NVIDIA-SMI has failed"):
        SmiSource()


def test_hanging_binary_times_out(fake_smi: FakeSmi, only_path: Callable[[Path], None]) -> None:
    only_path(fake_smi("time.sleep(30)"))
    with pytest.raises(GpuSourceUnavailable, match=r"did not answer in 0\.3 s"):
        SmiSource(open_timeout_s=0.3)


def test_garbled_output_is_unavailable(
    fake_smi: FakeSmi, only_path: Callable[[Path], None]
) -> None:
    only_path(fake_smi(f"print({HEADER!r}); print('0, 1, 2')"))
    with pytest.raises(GpuSourceUnavailable, match="output not understood"):
        SmiSource()


def test_no_gpu_listed_is_unavailable(fake_smi: FakeSmi, only_path: Callable[[Path], None]) -> None:
    only_path(fake_smi(f"print({HEADER!r})"))
    with pytest.raises(GpuSourceUnavailable, match="no GPUs"):
        SmiSource()
