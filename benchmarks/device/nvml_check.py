"""Check the NVML source on a real GPU: 20 reads at 10 Hz while a matmul loop runs.

Run on an H100/H200 host with PyTorch and nvidia-ml-py, from the repository root:

    python benchmarks/device/nvml_check.py

It needs gpucost importable (installed, or `src/` here with msgspec available). It prints
one JSON document (describe(), the samples, per-GPU energy and read latency) and exits
non-zero if a GPU's energy counter did not increase or a read took a second or more.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

READS = 20
INTERVAL_S = 0.1
MATMUL_N = 4096

try:
    import gpucost  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from gpucost.runtime.gpu import GpuSourceUnavailable, open_source  # noqa: E402
from gpucost.runtime.samples import GpuSample  # noqa: E402


def burn(stop: threading.Event) -> int:
    """Keep the first CUDA device busy with bf16 matmuls until told to stop."""
    import torch

    a = torch.randn(MATMUL_N, MATMUL_N, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(MATMUL_N, MATMUL_N, device="cuda", dtype=torch.bfloat16)
    rounds = 0
    while not stop.is_set():
        for _ in range(50):
            a = (a @ b) * 0.01  # scaled so values stay finite round after round
        # Synchronise so the queue stays short and stop takes effect promptly.
        torch.cuda.synchronize()
        rounds += 1
    return rounds


def main() -> int:
    try:
        source, notes = open_source("nvml")
    except GpuSourceUnavailable as err:
        print(f"NVML source unavailable: {err.one_line()}", file=sys.stderr)
        return 2
    stop = threading.Event()
    rounds: list[int] = []
    worker = threading.Thread(target=lambda: rounds.append(burn(stop)), daemon=True)
    worker.start()
    time.sleep(0.2)  # let CUDA initialise before the first read
    reads: list[list[GpuSample]] = []
    latencies: list[float] = []
    try:
        next_at = time.monotonic()
        for _ in range(READS):
            began = time.monotonic()
            reads.append(source.read())
            latencies.append(time.monotonic() - began)
            next_at += INTERVAL_S
            time.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        stop.set()
        worker.join(timeout=30)
        described = source.describe()
        source.close()

    per_gpu: dict[int, dict[str, Any]] = {}
    failures: list[str] = []
    for index in sorted({s.gpu_index for r in reads for s in r}):
        series = [s for r in reads for s in r if s.gpu_index == index]
        energies = [s.energy_j for s in series if s.energy_j is not None]
        powers = [s.power_w for s in series if s.power_w is not None]
        span = series[-1].t - series[0].t
        delta = energies[-1] - energies[0] if len(energies) >= 2 else None
        per_gpu[index] = {
            "energy_delta_j": delta,
            "mean_power_from_counter_w": delta / span if delta is not None and span > 0 else None,
            "mean_power_w": sum(powers) / len(powers) if powers else None,
            "max_util_pct": max((s.gpu_util_pct or 0.0) for s in series),
        }
        if delta is None:
            failures.append(f"GPU {index}: no energy counter readings")
        elif not delta > 0:
            failures.append(f"GPU {index}: energy did not increase ({delta} J)")
    if max(latencies) >= 1.0:
        failures.append(f"a read took {max(latencies):.3f} s (contract: under 1 s)")

    print(
        json.dumps(
            {
                "notes": notes,
                "describe": described,
                "matmul_rounds": rounds[0] if rounds else None,
                "read_latency_s": {"max": max(latencies), "mean": sum(latencies) / len(latencies)},
                "per_gpu": per_gpu,
                "samples": [dataclasses.asdict(s) for r in reads for s in r],
                "failures": failures,
            },
            indent=1,
        )
    )
    assert not failures, "; ".join(failures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
