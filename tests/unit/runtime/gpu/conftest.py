"""A pynvml-shaped fake built from the H200 recordings: this machine has no GPU.

The one mock in the suite. It answers what `nvml_probe.json` says NVML answered, feeds
the readings of `trace.json` one sample at a time, and raises the real pynvml exception
classes (fan speed: NVMLError_NotSupported, as recorded).
"""

from __future__ import annotations

import copy
import json
import os
import stat
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from gpucost.runtime.trace import default_seed_path

RECORDING = Path(__file__).parents[3] / "fixtures" / "gpu" / "h200-llama1b-decode"
SMI_CSV = RECORDING / "smi_query.csv"
NVML_PROBE = RECORDING / "nvml_probe.json"


def nvml_error_from_text(text: str) -> pynvml.NVMLError:
    """'NVMLError_NotSupported: Not Supported' -> the real pynvml exception instance."""
    class_name = text.split(":", 1)[0]
    for code, cls in pynvml.NVMLError._valClassMapping.items():
        if cls.__name__ == class_name:
            return pynvml.NVMLError(code)
    raise AssertionError(f"no pynvml error class {class_name}")


class FakeDevice:
    """One GPU: identity from the probe, readings from the trace, errors where told."""

    def __init__(
        self,
        index: int,
        probe: dict[str, Any],
        samples: list[dict[str, Any]],
        errors: dict[str, int] | None = None,
    ) -> None:
        self.index = index
        self.probe = copy.deepcopy(probe)
        self.samples = samples
        self.errors = dict(errors or {})
        self.position = 0

    def answer(self, key: str) -> Any:
        """What NVML said for probe `key`, raising as it raised."""
        if key in self.errors:
            raise pynvml.NVMLError(self.errors[key])
        entry = self.probe[key]
        if not entry["ok"]:
            raise nvml_error_from_text(entry["error"])
        return entry["value"]

    def reading(self, key: str, trace_key: str) -> Any:
        self.answer(key)  # raises if the probe or the test says this call fails
        return self.samples[self.position][trace_key]


class FakeNvml:
    """Module-shaped: the source calls `fake.nvmlDeviceGetPowerUsage(handle)` and so on.

    Constants and exception classes come from the real pynvml, so the source's
    `except nvml.NVMLError` catches exactly what it would on a GPU host.
    """

    def __init__(self, devices: list[FakeDevice], init_error: int | None = None) -> None:
        self.devices = devices
        self.init_error = init_error
        self.initialised = False
        self.calls: Counter[tuple[str, int]] = Counter()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("NVML"):
            return getattr(pynvml, name)
        raise AttributeError(name)

    def advance(self, steps: int = 1) -> None:
        for d in self.devices:
            d.position += steps

    def _device(self, fn: str, handle: SimpleNamespace) -> FakeDevice:
        if not self.initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        self.calls[(fn, handle.index)] += 1
        device: FakeDevice = self.devices[handle.index]
        return device

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        if not self.initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        self.initialised = False
        self.calls[("nvmlShutdown", -1)] += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return str(self.devices[0].answer("driver"))

    def nvmlSystemGetNVMLVersion(self) -> str:
        return str(self.devices[0].answer("nvml_version"))

    def nvmlDeviceGetCount(self) -> int:
        if not self.initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimpleNamespace:
        handle = SimpleNamespace(index=index)
        self._device("nvmlDeviceGetHandleByIndex", handle).answer("handle")
        return handle

    def nvmlDeviceGetName(self, h: SimpleNamespace) -> str:
        return str(self._device("nvmlDeviceGetName", h).answer("name"))

    def nvmlDeviceGetUUID(self, h: SimpleNamespace) -> str:
        return str(self._device("nvmlDeviceGetUUID", h).answer("uuid"))

    def nvmlDeviceGetPowerUsage(self, h: SimpleNamespace) -> int:
        return int(self._device("nvmlDeviceGetPowerUsage", h).reading("power_mw", "power_mw"))

    def nvmlDeviceGetTotalEnergyConsumption(self, h: SimpleNamespace) -> int:
        d = self._device("nvmlDeviceGetTotalEnergyConsumption", h)
        return int(d.reading("energy_mj", "energy_mj"))

    def nvmlDeviceGetUtilizationRates(self, h: SimpleNamespace) -> SimpleNamespace:
        d = self._device("nvmlDeviceGetUtilizationRates", h)
        d.answer("util")
        s = d.samples[d.position]
        return SimpleNamespace(gpu=s["gpu_util_pct"], memory=s["mem_util_pct"])

    def nvmlDeviceGetMemoryInfo(self, h: SimpleNamespace) -> SimpleNamespace:
        d = self._device("nvmlDeviceGetMemoryInfo", h)
        d.answer("mem")
        s = d.samples[d.position]
        total = s["mem_total_bytes"]
        return SimpleNamespace(
            total=total, used=s["mem_used_bytes"], free=total - s["mem_used_bytes"]
        )

    def nvmlDeviceGetTemperature(self, h: SimpleNamespace, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return int(self._device("nvmlDeviceGetTemperature", h).reading("temp_c", "temp_c"))

    def nvmlDeviceGetClockInfo(self, h: SimpleNamespace, clock: int) -> int:
        d = self._device("nvmlDeviceGetClockInfo", h)
        if clock == pynvml.NVML_CLOCK_SM:
            return int(d.reading("sm_clock_mhz", "sm_clock_mhz"))
        assert clock == pynvml.NVML_CLOCK_MEM
        return int(d.answer("mem_clock_mhz"))

    def nvmlDeviceGetMigMode(self, h: SimpleNamespace) -> list[int]:
        return list(self._device("nvmlDeviceGetMigMode", h).answer("mig_mode"))

    def nvmlDeviceGetFanSpeed(self, h: SimpleNamespace) -> int:
        return int(self._device("nvmlDeviceGetFanSpeed", h).answer("fan"))


def _recorded_probe() -> dict[str, Any]:
    probe: dict[str, Any] = json.loads(NVML_PROBE.read_text())
    probe["handle"] = {"ok": True, "value": None}
    return probe


def _recorded_samples() -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = json.loads(default_seed_path().read_text())["samples"]
    return samples


MakeNvml = Callable[..., FakeNvml]


@pytest.fixture(scope="session")
def smi_csv() -> str:
    """Raw `nvidia-smi --query-gpu=... --format=csv -lms 500` output from the H200."""
    return SMI_CSV.read_text()


@pytest.fixture(scope="session")
def recorded_probe() -> dict[str, Any]:
    """What each NVML call answered (or raised) on the H200."""
    return _recorded_probe()


@pytest.fixture(scope="session")
def recorded_samples() -> list[dict[str, Any]]:
    return _recorded_samples()


@pytest.fixture
def make_nvml(recorded_probe: dict[str, Any], recorded_samples: list[dict[str, Any]]) -> MakeNvml:
    """Build a fake with `count` recorded H200s; `errors[i]` / `probe[i]` change GPU i."""

    def build(
        count: int = 2,
        *,
        errors: dict[int, dict[str, int]] | None = None,
        probe: dict[int, dict[str, Any]] | None = None,
        init_error: int | None = None,
    ) -> FakeNvml:
        devices = []
        for i in range(count):
            p = copy.deepcopy(recorded_probe)
            p["uuid"]["value"] = f"{p['uuid']['value'][:-1]}{i}" if i else p["uuid"]["value"]
            p.update((probe or {}).get(i, {}))
            devices.append(FakeDevice(i, p, recorded_samples, (errors or {}).get(i)))
        return FakeNvml(devices, init_error=init_error)

    return build


@pytest.fixture
def fake_smi(tmp_path: Path) -> Callable[[str], Path]:
    """Write an executable `nvidia-smi` whose body is the given Python; return its folder."""

    def write(body: str) -> Path:
        folder = tmp_path / "bin"
        folder.mkdir(exist_ok=True)
        script = folder / "nvidia-smi"
        script.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        return folder

    return write


@pytest.fixture
def only_path(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Make PATH exactly one folder, so a real nvidia-smi on a GPU host never answers."""

    def use(folder: Path) -> None:
        monkeypatch.setenv("PATH", os.fspath(folder))

    return use
