"""Window costs: each closed window's GPU figures and cost, and every event's share of it.

A window is written when the schedule says it is due: its events are counted from
`token_usage`, its cost computed from the GPU samples around it, its `gpu_metrics`
document written, and each of its events given its share. Events that land in a window
after it was written make it due again.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable

from pymongo.errors import PyMongoError

from gpucost.runtime.cost import TokenTotals, WindowCost, cost_of_window
from gpucost.runtime.documents import Document
from gpucost.runtime.locks import KeyedLocks
from gpucost.runtime.metrics import Metrics
from gpucost.runtime.mongo import MongoStore
from gpucost.runtime.settings import ProcessorSettings
from gpucost.runtime.windows import (
    NO_SAMPLES_YET,
    GpuKey,
    SampleBuffer,
    SampleReach,
    WindowKey,
    WindowSchedule,
    start_s,
)

log = logging.getLogger("gpucost.processor")

# GPU fields kept from a stored window when its samples are no longer in memory
# (a late event after a restart): the cost rules never re-derive energy from nothing.
GPU_FIELDS = (
    "energy_j",
    "energy_cost_usd",
    "energy_basis",
    "mean_power_w",
    "mean_gpu_util_pct",
    "busy_cost_usd",
    "sample_count",
    "source",
    "gpu_name",
)


class WindowWriter:
    """Owns the window schedule and the per-window locks that inserts share with it."""

    def __init__(
        self,
        settings: ProcessorSettings,
        *,
        store: MongoStore,
        buffers: dict[GpuKey, SampleBuffer],
        metrics: Metrics,
        clock: Callable[[], float],
        gpu_names: dict[GpuKey, str] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.buffers = buffers
        self.metrics = metrics
        self.clock = clock
        self.gpu_names = gpu_names if gpu_names is not None else {}
        self.schedule = WindowSchedule(settings.window_s, settings.window_grace_s)
        self.started_at = clock()
        self.locks = KeyedLocks()
        # Who writes: the static member id, else node and process, for `written_by`.
        self.writer = settings.kafka_group_instance_id or f"{settings.node}:{os.getpid()}"
        self.owns: Callable[[WindowKey], bool] = lambda _key: True
        """Whether this processor may write a window now: its node's partition is
        assigned here. Checked under the window's lock, right before the write."""

    async def write_due(
        self, *, caught_up: bool, event_time: float | None, samples_from_kafka: bool = False
    ) -> None:
        """Write every window that is due, oldest first; stop at the first that fails."""
        now = self.clock()
        reach, unknown = None, NO_SAMPLES_YET
        if samples_from_kafka:
            stale = self.settings.samples_stale_s
            reach = {
                gpu: SampleReach(
                    buffer.samples[-1].t if buffer.samples else -math.inf,
                    stopped=buffer.arrived_at is None or now - buffer.arrived_at >= stale,
                )
                for gpu, buffer in self.buffers.items()
            }
            # A GPU never sampled since this processor started: its events wait that long
            # for a first sample before they are priced without one.
            unknown = SampleReach(-math.inf, stopped=now - self.started_at >= stale)
        due = self.schedule.due(
            now,
            caught_up=caught_up,
            event_time=event_time,
            reach=reach,
            unknown=unknown,
        )
        for key in due:
            self.schedule.claim(key)
            try:
                await self.write(key)
            except PyMongoError as error:
                self.schedule.mark_events({key})
                log.warning("window %s not written yet: %s", key, error)
                return  # keep order: the schedule advances one window at a time
            self.schedule.done(key)

    async def write(self, key: WindowKey) -> WindowCost | None:
        """Write one window; None when it is no longer this processor's to write."""
        # Inserts into this window wait while it is counted and its shares are set: an
        # event landing between the count and the update would get a share of a total it
        # is not in. Inserts into other windows (the open one, as a rule) go on.
        async with self.locks.hold([key]):
            if not self.owns(key):
                return None
            return await self._write(key)

    def price_of(self, gpu: GpuKey) -> float:
        """What this GPU costs per hour: by node, else by model, else the default."""
        return self.settings.price_for(node=gpu[0], model=self.gpu_names.get(gpu))

    async def _write(self, key: WindowKey) -> WindowCost:
        node, gpu, _ = key
        settings = self.settings
        start = start_s(key)
        tokens = await self.store.window_totals(key)
        stored = await self.store.stored_window(key)
        # A rewrite (a late event) keeps the price the window was first costed at: a
        # price change applies from now on, never to history.
        price = (
            float(stored["price_per_hour_usd"])
            if stored is not None and stored.get("price_per_hour_usd") is not None
            else self.price_of((node, gpu))
        )
        buffer = self.buffers.get((node, gpu))
        end = start + settings.window_s
        samples = buffer.around(start, end) if buffer and buffer.covers(start, end) else []
        window = cost_of_window(
            gpu,
            start,
            window_s=settings.window_s,
            samples=samples,
            tokens=tokens,
            price_per_hour_usd=price,
            electricity_usd_per_kwh=settings.electricity_usd_per_kwh,
        )
        doc: Document = window.to_dict()
        doc.update(
            node=node,
            gpu_name=self.gpu_names.get((node, gpu)),
            price_per_hour_usd=price,
            updated_at=self.clock(),
        )
        if not samples and stored is not None and stored.get("sample_count"):
            doc = _keep_gpu_fields(doc, stored, tokens)
        await self.store.write_window(doc, self.writer)
        if tokens.requests:
            await self.store.apply_window_cost(key, window.cost_per_token)
        await self.store.clear_pending(key)
        self.metrics.windows_written.inc()
        if window.cost_per_token is not None:
            self.metrics.cost_per_token.labels(node, gpu).set(window.cost_per_token)
            self.metrics.cost_per_million.labels(node, gpu).set(window.cost_per_token * 1e6)
        return window


def _keep_gpu_fields(doc: Document, stored: Document, tokens: TokenTotals) -> Document:
    kept = dict(doc)
    for name in GPU_FIELDS:
        kept[name] = stored.get(name)
    energy = kept.get("energy_j")
    total, output = tokens.total_tokens, tokens.completion_tokens
    kept["joules_per_token"] = energy / total if energy is not None and total else None
    kept["joules_per_output_token"] = energy / output if energy is not None and output else None
    return kept
