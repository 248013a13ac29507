from __future__ import annotations

import logging
import sys
from typing import Any

import pynvml
import pytest

from gpucost.runtime.gpu.base import GpuSource, GpuSourceUnavailable
from gpucost.runtime.gpu.nvml import NvmlSource

pytestmark = pytest.mark.unit

H200_UUID = "GPU-701ef3e5-e139-92fe-6300-365ba25c89f9"


def test_fake_raises_not_supported_for_fan_as_recorded(make_nvml: Any) -> None:
    nvml = make_nvml(1)
    nvml.nvmlInit()
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        nvml.nvmlDeviceGetFanSpeed(handle)


def test_enumerates_both_gpus_with_identity(make_nvml: Any) -> None:
    source = NvmlSource(make_nvml(2), clock=lambda: 42.0)
    samples = source.read()
    assert [s.gpu_index for s in samples] == [0, 1]
    assert [s.gpu_name for s in samples] == ["NVIDIA H200", "NVIDIA H200"]
    assert samples[0].gpu_uuid == H200_UUID
    assert samples[1].gpu_uuid != samples[0].gpu_uuid
    assert all(s.source == "nvml" and s.t == 42.0 for s in samples)
    info = source.describe()
    assert info["gpu_count"] == 2
    assert info["driver_version"] == "580.159.04"
    assert info["nvml_version"] == "13.580.159.04"
    assert isinstance(source, GpuSource)


def test_reads_every_field_in_sample_units(make_nvml: Any, recorded_samples: Any) -> None:
    first = recorded_samples[0]
    sample = NvmlSource(make_nvml(1)).read()[0]
    assert sample.power_w == pytest.approx(first["power_mw"] / 1000)
    assert sample.energy_j == pytest.approx(first["energy_mj"] / 1000)
    assert sample.gpu_util_pct == first["gpu_util_pct"]
    assert sample.mem_util_pct == first["mem_util_pct"]
    assert sample.mem_used_bytes == first["mem_used_bytes"]
    assert sample.mem_total_bytes == first["mem_total_bytes"]
    assert sample.temp_c == first["temp_c"]
    assert sample.sm_clock_mhz == first["sm_clock_mhz"]
    assert sample.mig_mode is False


def test_energy_counter_follows_the_recording(make_nvml: Any, recorded_samples: Any) -> None:
    nvml = make_nvml(1)
    source = NvmlSource(nvml)
    before = source.read()[0].energy_j
    nvml.advance(500)
    after = source.read()[0].energy_j
    assert before is not None
    assert after is not None
    expected = (recorded_samples[500]["energy_mj"] - recorded_samples[0]["energy_mj"]) / 1000
    assert after - before == pytest.approx(expected)
    assert after > before


def test_unsupported_field_is_left_none_and_not_retried(
    make_nvml: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A card without the energy counter (pre-Volta): power still read, energy None.
    nvml = make_nvml(2, errors={1: {"energy_mj": pynvml.NVML_ERROR_NOT_SUPPORTED}})
    with caplog.at_level(logging.INFO, logger="gpucost.runtime.gpu.nvml"):
        source = NvmlSource(nvml)
        for _ in range(5):
            gpu0, gpu1 = source.read()
            nvml.advance()
    assert gpu1.energy_j is None
    assert gpu1.power_w is not None
    assert gpu0.energy_j is not None
    assert nvml.calls[("nvmlDeviceGetTotalEnergyConsumption", 1)] == 1
    assert nvml.calls[("nvmlDeviceGetTotalEnergyConsumption", 0)] == 6
    logged = [r for r in caplog.records if "energy_j" in r.getMessage()]
    assert len(logged) == 1
    gpus: Any = source.describe()["gpus"]
    assert gpus[0]["unsupported"] == []
    assert gpus[1]["unsupported"] == ["energy_j"]


def test_mig_is_flagged_and_its_missing_utilisation_is_not_fatal(make_nvml: Any) -> None:
    # With MIG on, the parent GPU has no utilisation; power and energy still answer.
    mig = {1: {"mig_mode": {"ok": True, "value": [1, 1]}}}
    errors = {1: {"util": pynvml.NVML_ERROR_NOT_SUPPORTED}}
    source = NvmlSource(make_nvml(2, probe=mig, errors=errors))
    gpu0, gpu1 = source.read()
    assert gpu0.mig_mode is False
    assert gpu1.mig_mode is True
    assert gpu1.gpu_util_pct is None
    assert gpu1.mem_util_pct is None
    assert gpu1.energy_j is not None
    gpus: Any = source.describe()["gpus"]
    assert gpus[1]["mig_mode"] is True
    assert gpus[1]["unsupported"] == ["gpu_util_pct", "mem_util_pct"]


def test_gpu_without_mig_reports_unknown_not_off(make_nvml: Any) -> None:
    errors = {0: {"mig_mode": pynvml.NVML_ERROR_NOT_SUPPORTED}}
    assert NvmlSource(make_nvml(1, errors=errors)).read()[0].mig_mode is None


def test_transient_error_is_none_once_then_retried(
    make_nvml: Any, caplog: pytest.LogCaptureFixture
) -> None:
    nvml = make_nvml(1)
    source = NvmlSource(nvml)
    nvml.devices[0].errors["temp_c"] = pynvml.NVML_ERROR_TIMEOUT
    with caplog.at_level(logging.WARNING, logger="gpucost.runtime.gpu.nvml"):
        assert source.read()[0].temp_c is None
        assert source.read()[0].temp_c is None
    assert len([r for r in caplog.records if "temp_c" in r.getMessage()]) == 1
    del nvml.devices[0].errors["temp_c"]
    assert source.read()[0].temp_c == 36
    gpus: Any = source.describe()["gpus"]
    assert gpus[0]["unsupported"] == []


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "Library Not Found"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "Driver Not Loaded"),
    ],
)
def test_nvmlinit_failure_makes_source_unavailable(make_nvml: Any, code: int, words: str) -> None:
    with pytest.raises(GpuSourceUnavailable, match=f"nvmlInit failed: .*{words}") as caught:
        NvmlSource(make_nvml(1, init_error=code))
    assert caught.value.hint


def test_no_gpu_is_unavailable_and_shuts_nvml_down(make_nvml: Any) -> None:
    nvml = make_nvml(0)
    with pytest.raises(GpuSourceUnavailable, match="no usable GPU"):
        NvmlSource(nvml)
    assert not nvml.initialised


def test_gpu_whose_handle_fails_is_skipped(make_nvml: Any) -> None:
    nvml = make_nvml(2, errors={0: {"handle": pynvml.NVML_ERROR_GPU_IS_LOST}})
    samples = NvmlSource(nvml).read()
    assert [s.gpu_index for s in samples] == [1]


def test_close_shuts_down_once_and_read_after_close_fails(make_nvml: Any) -> None:
    nvml = make_nvml(1)
    source = NvmlSource(nvml)
    source.close()
    source.close()
    assert nvml.calls[("nvmlShutdown", -1)] == 1
    with pytest.raises(GpuSourceUnavailable, match="closed"):
        source.read()


def test_missing_nvidia_ml_py_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(GpuSourceUnavailable, match="nvidia-ml-py is not installed"):
        NvmlSource()


def test_real_pynvml_opens_on_a_gpu_host_or_says_why_not() -> None:
    # The real library, no fake: unavailable with a reason here, samples on a GPU host.
    source: NvmlSource | None = None
    reason = ""
    try:
        source = NvmlSource()
    except GpuSourceUnavailable as err:
        reason = err.message  # e.g. "nvmlInit failed: NVML Shared Library Not Found"
    if source is None:
        assert reason
        return
    try:
        assert source.read()
    finally:
        source.close()
