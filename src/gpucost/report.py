"""What tokens cost, read back from the `gpu_metrics` windows the processor wrote.

Reads only: the stored windows are the truth, and a what-if price is applied here,
never written back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from gpucost.errors import ServiceUnavailable


@dataclass(frozen=True)
class GpuReport:
    gpu: str
    windows: int
    gpu_hours: float
    requests: int
    total_tokens: int
    completion_tokens: int
    cost_usd: float
    busy_cost_usd: float | None
    energy_j: float | None
    mean_power_w: float | None
    mean_gpu_util_pct: float | None
    usd_per_million_tokens: float | None
    usd_per_million_output_tokens: float | None
    joules_per_token: float | None
    sources: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_windows(
    windows: list[dict[str, Any]], price_per_hour_usd: float | None = None
) -> list[GpuReport]:
    """Per GPU totals. With `price_per_hour_usd`, costs are recomputed at that price."""
    by_gpu: dict[str, list[dict[str, Any]]] = {}
    for window in windows:
        by_gpu.setdefault(str(window["gpu"]), []).append(window)
    return [_summarize(gpu, rows, price_per_hour_usd) for gpu, rows in sorted(by_gpu.items())]


def _summarize(gpu: str, rows: list[dict[str, Any]], price: float | None) -> GpuReport:
    seconds = math.fsum(float(r["window_s"]) for r in rows)

    def cost(row: dict[str, Any]) -> float:
        return (
            price * float(row["window_s"]) / 3600 if price is not None else float(row["cost_usd"])
        )

    total_cost = math.fsum(cost(r) for r in rows)
    busy = [
        cost(r) * r["mean_gpu_util_pct"] / 100
        for r in rows
        if r.get("mean_gpu_util_pct") is not None
    ]
    energies = [r["energy_j"] for r in rows if r.get("energy_j") is not None]
    powers = [r["mean_power_w"] for r in rows if r.get("mean_power_w") is not None]
    utils = [r["mean_gpu_util_pct"] for r in rows if r.get("mean_gpu_util_pct") is not None]
    tokens = sum(int(r.get("total_tokens", 0)) for r in rows)
    output = sum(int(r.get("completion_tokens", 0)) for r in rows)
    energy = math.fsum(energies) if energies and len(energies) == len(rows) else None
    return GpuReport(
        gpu=gpu,
        windows=len(rows),
        gpu_hours=seconds / 3600,
        requests=sum(int(r.get("requests", 0)) for r in rows),
        total_tokens=tokens,
        completion_tokens=output,
        cost_usd=total_cost,
        busy_cost_usd=math.fsum(busy) if busy else None,
        energy_j=energy,
        mean_power_w=math.fsum(powers) / len(powers) if powers else None,
        mean_gpu_util_pct=math.fsum(utils) / len(utils) if utils else None,
        usd_per_million_tokens=total_cost / tokens * 1e6 if tokens else None,
        usd_per_million_output_tokens=total_cost / output * 1e6 if output else None,
        joules_per_token=energy / tokens if energy is not None and tokens else None,
        sources=sorted({str(r["source"]) for r in rows if r.get("source")}),
    )


def fetch_windows(
    mongodb_uri: str, database: str, since_s: float, now: float, prefix: str = ""
) -> list[dict[str, Any]]:
    """The windows that started in the last `since_s` seconds, oldest first."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000)
    try:
        collection = client[database][f"{prefix}gpu_metrics"]
        cursor = collection.find({"window_start": {"$gte": now - since_s}}, {"_id": 0})
        return sorted(cursor, key=lambda w: (w["window_start"], str(w["gpu"])))
    except PyMongoError as error:
        raise ServiceUnavailable(
            f"cannot read gpu_metrics: {type(error).__name__}",
            hint="check MONGODB_URI and that the server is up",
        ) from None
    finally:
        client.close()
