"""GPU samples from NVML in-process, through nvidia-ml-py (`import pynvml`).

The preferred source: it reads the driver's total-energy counter, which on Hopper is
the better measure of energy (nvmlDeviceGetPowerUsage there is a 1-second average).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gpucost.runtime.gpu.base import GpuSourceUnavailable
from gpucost.runtime.samples import GpuSample, SourceName

log = logging.getLogger(__name__)

# A field that raised one of these will raise it every time: the GPU or driver lacks it
# (fan on a passively cooled card, utilisation of a GPU split by MIG, an old driver
# without the symbol). Such a field is dropped for good instead of being retried on every
# sample. Anything else (a timeout, an unknown error) is left None and tried again.
_PERMANENT_ERRORS = (
    "NVMLError_NotSupported",
    "NVMLError_FunctionNotFound",
    "NVMLError_NoPermission",
)

Reader = Callable[[Any, Any], Any]


def _power_w(nvml: Any, h: Any) -> float:
    return float(nvml.nvmlDeviceGetPowerUsage(h)) / 1000.0


def _energy_j(nvml: Any, h: Any) -> float:
    return float(nvml.nvmlDeviceGetTotalEnergyConsumption(h)) / 1000.0


def _gpu_util_pct(nvml: Any, h: Any) -> float:
    return float(nvml.nvmlDeviceGetUtilizationRates(h).gpu)


def _mem_util_pct(nvml: Any, h: Any) -> float:
    return float(nvml.nvmlDeviceGetUtilizationRates(h).memory)


def _mem_used_bytes(nvml: Any, h: Any) -> int:
    return int(nvml.nvmlDeviceGetMemoryInfo(h).used)


def _mem_total_bytes(nvml: Any, h: Any) -> int:
    return int(nvml.nvmlDeviceGetMemoryInfo(h).total)


def _temp_c(nvml: Any, h: Any) -> float:
    return float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))


def _sm_clock_mhz(nvml: Any, h: Any) -> float:
    return float(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM))


# GpuSample field -> how NVML reads it. Utilisation and memory are read twice (one call
# each per field) so that one field's failure never hides another's value.
READERS: dict[str, Reader] = {
    "power_w": _power_w,
    "energy_j": _energy_j,
    "gpu_util_pct": _gpu_util_pct,
    "mem_util_pct": _mem_util_pct,
    "mem_used_bytes": _mem_used_bytes,
    "mem_total_bytes": _mem_total_bytes,
    "temp_c": _temp_c,
    "sm_clock_mhz": _sm_clock_mhz,
}


def _text(value: object) -> str:
    # Older nvidia-ml-py returned bytes for names and uuids.
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class _Gpu:
    index: int
    handle: Any
    name: str | None
    uuid: str | None
    mig_mode: bool | None
    unsupported: set[str] = field(default_factory=set)
    warned: set[tuple[str, str]] = field(default_factory=set)


def import_pynvml() -> Any:
    """The real nvidia-ml-py module, or GpuSourceUnavailable if it is not installed."""
    try:
        return importlib.import_module("pynvml")
    except ImportError as err:
        raise GpuSourceUnavailable(
            "nvidia-ml-py is not installed", hint="pip install nvidia-ml-py"
        ) from err


class NvmlSource:
    """Reads every GPU NVML sees. Pass `nvml` to use another pynvml-shaped module."""

    name: SourceName = "nvml"

    def __init__(self, nvml: Any = None, *, clock: Callable[[], float] = time.time) -> None:
        self._nvml = import_pynvml() if nvml is None else nvml
        self._clock = clock
        self._closed = False
        try:
            self._nvml.nvmlInit()
        except self._nvml.NVMLError as err:
            raise GpuSourceUnavailable(
                f"nvmlInit failed: {err}",
                hint="is the NVIDIA driver loaded and, in a container, the GPU passed in?",
            ) from err
        try:
            self._gpus = self._enumerate()
            if not self._gpus:
                raise GpuSourceUnavailable("NVML found no usable GPU")
            self._driver = self._system_text("nvmlSystemGetDriverVersion")
            self._nvml_version = self._system_text("nvmlSystemGetNVMLVersion")
            # The first read finds the unsupported fields, so describe() lists them at once.
            self.read()
        except BaseException:
            self.close()
            raise

    def _enumerate(self) -> list[_Gpu]:
        nvml = self._nvml
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as err:
            raise GpuSourceUnavailable(f"nvmlDeviceGetCount failed: {err}") from err
        gpus: list[_Gpu] = []
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
            except nvml.NVMLError as err:
                # One lost or fenced-off GPU should not blind us to the others.
                log.warning("GPU %d skipped: nvmlDeviceGetHandleByIndex failed: %s", index, err)
                continue
            gpus.append(
                _Gpu(
                    index=index,
                    handle=handle,
                    name=self._device_text(nvml.nvmlDeviceGetName, handle),
                    uuid=self._device_text(nvml.nvmlDeviceGetUUID, handle),
                    mig_mode=self._mig_mode(handle),
                )
            )
        return gpus

    def _device_text(self, fn: Callable[[Any], object], handle: Any) -> str | None:
        try:
            return _text(fn(handle))
        except self._nvml.NVMLError:
            return None

    def _system_text(self, fn_name: str) -> str | None:
        try:
            return _text(getattr(self._nvml, fn_name)())
        except self._nvml.NVMLError:
            return None

    def _mig_mode(self, handle: Any) -> bool | None:
        # Read once: changing MIG mode needs a GPU reset, which would also void our handles.
        try:
            current, _pending = self._nvml.nvmlDeviceGetMigMode(handle)
        except self._nvml.NVMLError:
            return None  # GPUs without MIG raise NotSupported: "not applicable", not "off"
        return bool(current == self._nvml.NVML_DEVICE_MIG_ENABLE)

    def _read_field(self, gpu: _Gpu, name: str, reader: Reader) -> Any:
        try:
            return reader(self._nvml, gpu.handle)
        except self._nvml.NVMLError as err:
            kind = type(err).__name__
            if kind in _PERMANENT_ERRORS:
                gpu.unsupported.add(name)
                log.info("GPU %d: %s not available from NVML (%s); left None", gpu.index, name, err)
            elif (name, kind) not in gpu.warned:
                gpu.warned.add((name, kind))
                log.warning(
                    "GPU %d: reading %s failed (%s); left None, will retry", gpu.index, name, err
                )
            return None

    def read(self) -> list[GpuSample]:
        if self._closed:
            raise GpuSourceUnavailable("NVML source is closed")
        samples: list[GpuSample] = []
        for gpu in self._gpus:
            values: dict[str, Any] = {
                name: self._read_field(gpu, name, reader)
                for name, reader in READERS.items()
                if name not in gpu.unsupported
            }
            samples.append(
                GpuSample(
                    t=self._clock(),
                    gpu_index=gpu.index,
                    source=self.name,
                    gpu_uuid=gpu.uuid,
                    gpu_name=gpu.name,
                    mig_mode=gpu.mig_mode,
                    **values,
                )
            )
        return samples

    def describe(self) -> dict[str, object]:
        return {
            "source": self.name,
            "driver_version": self._driver,
            "nvml_version": self._nvml_version,
            "gpu_count": len(self._gpus),
            "gpus": [
                {
                    "index": g.index,
                    "name": g.name,
                    "uuid": g.uuid,
                    "mig_mode": g.mig_mode,
                    "unsupported": sorted(g.unsupported),
                }
                for g in self._gpus
            ],
        }

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as err:
            log.debug("nvmlShutdown failed: %s", err)
