"""The processor: Kafka → validate → MongoDB, GPU sampling, window costs, HTTP.

Delivery is at-least-once with idempotent writes, so each event is stored exactly once:
one thread consumes batches and hands each to the event loop; a batch's offsets are
stored only once MongoDB acknowledged it and every batch before it. A crash at any point
leaves the unacknowledged batches uncommitted; their redelivery is a duplicate-key no-op.
Up to MAX_IN_FLIGHT batches are in the loop's hands at once, so the next batch is read
and validated while the last one is written. A partition revoke (which can only happen
inside `consume`) first waits for every batch in flight, so its commit covers only
written events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from pymongo.errors import PyMongoError

from gpucost.errors import ServiceUnavailable
from gpucost.runtime.documents import Document, event_document
from gpucost.runtime.events import Rejection, parse_event
from gpucost.runtime.gpu.base import GpuSource
from gpucost.runtime.kafka import commit_stored, consumer_lag, dead_letter_record
from gpucost.runtime.metrics import Metrics
from gpucost.runtime.mongo import MongoStore
from gpucost.runtime.reading_checks import check_sample
from gpucost.runtime.sample_wire import SampleRejection, decode_sample
from gpucost.runtime.samples import GpuSample
from gpucost.runtime.settings import ProcessorSettings
from gpucost.runtime.window_writer import WindowWriter
from gpucost.runtime.windows import GpuKey, SampleBuffer, WindowKey

log = logging.getLogger("gpucost.processor")

RETRY_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
MAX_IN_FLIGHT = 2
"""Batches written at once. Two keep the database and the validation busy side by side
(measured: 28,000 -> 32,000-39,500 events/s draining a backlog on the Rust server); a
third adds memory and redelivery on a crash, not speed, on two cores."""


class _Stopping(Exception):
    """Asked to stop before a batch was acknowledged: it must stay uncommitted."""


@dataclass
class Health:
    """What `/ready` reports. Written by the tasks that know, read by the HTTP handler."""

    gpu_source: str
    gpu_notes: list[str]
    started_at: float
    mongo_ok: bool = False
    mongo_error: str | None = None
    kafka_assigned: int = 0
    kafka_error: str | None = None
    last_poll: float | None = None
    last_write: float | None = None
    lag: int | None = None
    stopping: bool = False


class Processor:
    """With a `source`, the processor samples GPUs itself (its own, or a recorded trace)
    under its own NODE: the design's single-host mode. Without one, GPU samples come
    from `gpucost-agent`s through the samples topic, keyed by node like the events, so
    the consumer that owns a partition owns every window of the nodes on it."""

    def __init__(
        self,
        settings: ProcessorSettings,
        *,
        store: MongoStore,
        source: GpuSource | None,
        source_notes: Sequence[str] = (),
        consumer_factory: Callable[[], Consumer],
        dlq_producer: Producer,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.source = source
        self.consumer_factory = consumer_factory
        self.dlq = dlq_producer
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.health = Health(
            source.name if source is not None else "agent", list(source_notes), clock()
        )
        self.buffers: dict[GpuKey, SampleBuffer] = {}
        self.retention_s = max(600.0, 4 * (settings.window_s + settings.window_grace_s))
        self.gpu_names: dict[GpuKey, str] = {}
        self.windows = WindowWriter(
            settings,
            store=store,
            buffers=self.buffers,
            metrics=self.metrics,
            clock=clock,
            gpu_names=self.gpu_names,
        )
        # (node, GPU UUID) -> the GPU's index on that node, learnt from samples.
        self.gpu_alias: dict[tuple[str, str], str] = {}
        # The events-topic partition each node's messages were last read from, and the
        # partitions this processor owns now (GPU_SOURCE=agent).
        self.node_partition: dict[str, int] = {}
        self.owned_partitions: set[int] = set()
        if source is None:
            self.windows.owns = self._owns
        self.window_error: BaseException | None = None
        # Consumer thread only: (sample time, offset) per samples-topic partition.
        self._sample_offsets: dict[int, deque[tuple[float, int]]] = {}
        self._stop = asyncio.Event()
        # Written by the consumer thread, read by the window task: plain values suffice.
        self._caught_up = True
        self._event_time: float | None = None
        self._thread_stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- lifecycle -------------------------------------------------------------------

    def request_stop(self) -> None:
        self.health.stopping = True
        self._thread_stop.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def run(self, *, serve_http: bool = True) -> None:
        """Run until `request_stop`; then drain: finish the batch in hand, commit, write
        the windows that are due, and return."""
        from gpucost.runtime.health import create_app, http_server

        self._loop = asyncio.get_running_loop()
        if self.source is not None:
            await self._sample_once()
            # Windows that got events but were not written before the last stop. With
            # agents, each partition's are loaded when it is assigned (on_assign).
            self.windows.schedule.mark_events(set(await self.store.pending_windows()))
        windows_task = asyncio.create_task(self._write_windows_forever(), name="windows")
        windows_task.add_done_callback(self._window_task_ended)
        tasks = [windows_task, asyncio.create_task(self._ping_forever(), name="mongo-ping")]
        if self.source is not None:
            tasks.append(asyncio.create_task(self._sample_forever(), name="sampler"))
        server = None
        if serve_http:
            app = create_app(self.readiness, self.metrics)
            server = http_server(app, self.settings.http_host, self.settings.http_port)
            tasks.append(asyncio.create_task(server.serve(), name="http"))
        consumer_done = asyncio.ensure_future(asyncio.to_thread(self._consume_forever))
        stop_waiter = asyncio.create_task(self._stop.wait())
        consumer_failed: BaseException | None = None
        try:
            await asyncio.wait({consumer_done, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.request_stop()
            try:
                await consumer_done
            except Exception as error:  # re-raised once the drain below is done
                consumer_failed = error
            # Windows left unwritten stay in pending_windows for the next start; the
            # bound keeps the whole drain inside a container's stop timeout (10 s).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._write_due_windows(), timeout=self.settings.drain_windows_s
                )
            if server is not None:
                server.should_exit = True
            for task in tasks:
                if task.get_name() != "http":
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            stop_waiter.cancel()
            if self.source is not None:
                self.source.close()
            await asyncio.to_thread(self.dlq.flush, 10)
        if consumer_failed is not None:
            raise consumer_failed
        if self.window_error is not None:
            raise ServiceUnavailable(
                f"window writer stopped: {type(self.window_error).__name__}: {self.window_error}"[
                    :300
                ],
                hint="this is a bug; the windows not written are in pending_windows",
            )

    def _window_task_ended(self, task: asyncio.Task[None]) -> None:
        # The window writer runs forever; ending any other way than by cancellation is
        # a failure that must not hide behind a ready process that no longer costs.
        if task.cancelled():
            return
        self.window_error = task.exception() or RuntimeError("window task returned")
        log.error("window writer failed: %r", self.window_error)
        self.request_stop()

    # ---- consuming (a thread: confluent-kafka's consume blocks) ----------------------

    def _consume_forever(self) -> None:
        assert self._loop is not None
        consumer = self.consumer_factory()
        in_flight: deque[tuple[Future[bool], list[TopicPartition]]] = deque()

        def settle(keep: int) -> bool:
            """Wait for the oldest batches until at most `keep` are in flight, storing each
            one's offsets in order. False once one was not written (asked to stop): it and
            every later batch stay uncommitted."""
            while len(in_flight) > keep:
                future, offsets = in_flight.popleft()
                if not future.result():
                    for later, _offsets in in_flight:
                        later.result()
                    in_flight.clear()
                    return False
                consumer.store_offsets(offsets=offsets)
            return True

        def on_assign(_consumer: Consumer, partitions: list[Any]) -> None:
            self.health.kafka_assigned = len(_consumer.assignment()) + len(partitions)
            log.info("partitions assigned: %s", [p.partition for p in partitions])
            if self.source is None:
                mine = {p.partition for p in partitions if p.topic == self.settings.kafka_topic}
                self._in_loop(self._take_over(mine))

        def on_revoke(_consumer: Consumer, partitions: list[Any]) -> None:
            # The commit may only cover written events: finish the batches in flight first.
            settle(0)
            if self.source is None:
                gone = {p.partition for p in partitions if p.topic == self.settings.kafka_topic}
                for partition in gone:
                    self._sample_offsets.pop(partition, None)
                self._in_loop(self._hand_over(gone))
            commit_stored(_consumer)
            log.info("partitions revoked: %s", [p.partition for p in partitions])

        topics = [self.settings.kafka_topic]
        if self.source is None:
            topics.append(self.settings.samples_topic)
        consumer.subscribe(topics, on_assign=on_assign, on_revoke=on_revoke)
        last_lag_check = 0.0
        try:
            while not self._thread_stop.is_set():
                messages = consumer.consume(
                    num_messages=self.settings.batch_max, timeout=self.settings.batch_wait_s
                )
                self.health.last_poll = self.clock()
                self.health.kafka_assigned = len(consumer.assignment())
                self._caught_up = len(messages) < self.settings.batch_max
                batch = [m for m in messages if self._usable(m)]
                if self.source is None:
                    batch = self._take_samples(consumer, batch)
                if batch:
                    future = asyncio.run_coroutine_threadsafe(self._write_batch(batch), self._loop)
                    in_flight.append((future, _next_offsets(batch)))
                # With nothing new to read, finish what is in flight: offsets of an idle
                # consumer are stored (and committed) promptly.
                if not settle(MAX_IN_FLIGHT - 1 if batch else 0):
                    break  # stopping while MongoDB was away: leave those batches uncommitted
                now = self.clock()
                if now - last_lag_check >= 1.0:
                    last_lag_check = now
                    self.health.lag = consumer_lag(consumer)
                    if self.health.lag is not None:
                        self.metrics.lag.set(self.health.lag)
        finally:
            settle(0)
            commit_stored(consumer)
            consumer.close()

    def _usable(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        self.health.kafka_error = str(error)
        # A fatal error reaches consume() as a _FATAL message whose own fatal() is False.
        if error.fatal() or error.code() == KafkaError._FATAL:
            # The consumer is dead for good (librdkafka's word): consuming on left a
            # process that looked alive and ready and moved nothing.
            raise ServiceUnavailable(
                f"Kafka consumer stopped by a fatal error: {error.str()}",
                hint=_fatal_hint(error),
            )
        log.warning("kafka error: %s", error)
        return False

    # ---- writing events --------------------------------------------------------------

    async def _write_batch(self, messages: list[Message]) -> bool:
        """Write one batch, retrying until MongoDB acknowledges. False if asked to stop
        before that: then nothing of this batch may be committed."""
        self.metrics.consumed.inc(len(messages))
        started = time.perf_counter()
        docs, rejected = self._validate(messages)
        try:
            if rejected:
                # Once per batch, outside the retry below: a MongoDB outage must not
                # dead-letter the same message again on every attempt.
                await self._dead_letter(rejected)
            attempt = 0
            while True:
                try:
                    await self._insert(docs)
                    break
                except PyMongoError as error:
                    self.health.mongo_ok = False
                    self.health.mongo_error = f"{type(error).__name__}: {error}"[:300]
                    delay = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
                    attempt += 1
                    log.warning("batch write failed, retrying in %.1fs: %s", delay, error)
                    await self._sleep_unless_stopping(delay)
        except _Stopping:
            return False
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return True

    async def _sleep_unless_stopping(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)
        if self._stop.is_set():
            raise _Stopping

    def _validate(
        self, messages: list[Message]
    ) -> tuple[list[Document], list[tuple[Message, Rejection]]]:
        received_at = self.clock()
        docs: dict[str, Document] = {}
        rejected: list[tuple[Message, Rejection]] = []
        duplicates = 0
        for message in messages:
            parsed = parse_event(
                message.value(),
                now=received_at,
                max_future_skew_s=self.settings.max_future_skew_s,
            )
            if isinstance(parsed, Rejection):
                rejected.append((message, parsed))
                continue
            doc = event_document(
                parsed,
                self._gpu_key(parsed.node, parsed.gpu),
                self.settings.window_s,
                partition=message.partition() or 0,
                offset=message.offset() or 0,
                received_at=received_at,
            )
            # A batch can carry the same event twice; the first copy wins, as on redelivery.
            if doc["_id"] in docs:
                duplicates += 1
            else:
                docs[doc["_id"]] = doc
        self.metrics.duplicates.inc(duplicates)
        return list(docs.values()), rejected

    async def _insert(self, docs: list[Document]) -> None:
        windows: set[WindowKey] = {
            (d["node"], d["gpu"], round(d["window_start"] * 1000)) for d in docs
        }
        partitions = {d["node"]: d["kafka"]["partition"] for d in docs}
        self.node_partition.update(partitions)
        # Shared: batches of one window are inserted side by side; only its cost write
        # (WindowWriter.write) excludes them.
        async with self.windows.locks.hold(windows, shared=True):
            outcome = await self.store.insert_events(docs)
            # Recorded before the batch's offsets are stored: a crash from here on leaves
            # the window findable at the next start, and its events redelivered.
            await self.store.mark_pending(windows, partitions)
        now = self.clock()
        self.health.mongo_ok = True
        self.health.mongo_error = None
        self.health.last_write = now
        self.metrics.last_write.set(now)
        self.metrics.written.inc(outcome.inserted)
        self.metrics.duplicates.inc(outcome.duplicates)
        self.windows.schedule.mark_events(windows)
        if docs:
            newest = max(d["ts"] for d in docs)
            self._event_time = max(newest, self._event_time or newest)

    async def _dead_letter(self, rejected: list[tuple[Message, Rejection]]) -> None:
        failed: list[str] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failed.append(str(error))

        for message, rejection in rejected:
            value, headers = dead_letter_record(
                message.value(),
                reason=rejection.reason,
                detail=rejection.detail,
                topic=message.topic() or "",
                partition=message.partition() or 0,
                offset=message.offset() or 0,
            )
            while True:
                try:
                    self.dlq.produce(
                        self.settings.kafka_dlq_topic,
                        value=value,
                        key=message.key(),
                        headers=headers,
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    await asyncio.to_thread(self.dlq.poll, 0.5)
                except KafkaException as error:
                    # Refused at once (a key over the size limit): the message cannot be
                    # dead-lettered; say so loudly rather than stop consuming for good.
                    failed.append(str(error))
                    break
            self.metrics.dead_lettered.labels(rejection.reason).inc()
        # These messages' offsets are stored once this returns: wait for the broker's ack.
        while await asyncio.to_thread(self.dlq.flush, 5.0):
            log.warning("dead-letter topic slow to acknowledge; still flushing")
            if self._stop.is_set():
                raise _Stopping
        if failed:
            log.error("%d dead letters not written: %s", len(failed), failed[0])

    def _gpu_key(self, node: str, gpu: int | str) -> str:
        """A GPU's name on its node: its index, also where the event named its UUID and a
        sample of that node said which index the UUID is."""
        key = str(gpu)
        return self.gpu_alias.get((node, key), key)

    # ---- GPU samples -----------------------------------------------------------------

    async def _sample_once(self) -> None:
        assert self.source is not None
        samples = await asyncio.to_thread(self.source.read)
        for sample in samples:
            self._add_sample(self.settings.node, sample)

    def _add_sample(self, node: str, raw: GpuSample) -> GpuKey | None:
        # The agent applies the same rule before it publishes; the processor applies it
        # to what it reads itself, and again to what came over the wire.
        checked = check_sample(raw)
        for name in checked.dropped:
            self.metrics.readings_dropped.labels(name).inc()
        if checked.sample is None:
            self.metrics.readings_dropped.labels(checked.refused or "sample").inc()
            return None
        sample = checked.sample
        gpu = (node, str(sample.gpu_index))
        if sample.gpu_uuid:
            self.gpu_alias[(node, sample.gpu_uuid)] = gpu[1]
        if sample.gpu_name:
            self.gpu_names[gpu] = sample.gpu_name
        buffer = self.buffers.setdefault(gpu, SampleBuffer(self.retention_s))
        oldest = self.windows.schedule.oldest_unwritten_ms(gpu)
        # One window of margin: a window's energy is interpolated from the sample
        # before it.
        keep_from = math.inf if oldest is None else oldest / 1000 - self.settings.window_s
        buffer.add(sample, keep_from=keep_from)
        buffer.arrived_at = self.clock()
        self.windows.schedule.mark_sampled(gpu, sample.t)
        if sample.power_w is not None:
            self.metrics.gpu_power.labels(*gpu).set(sample.power_w)
        return gpu

    def _take_samples(self, consumer: Consumer, messages: list[Message]) -> list[Message]:
        """Hand the samples-topic messages of a batch to the loop; return the events."""
        topic = self.settings.samples_topic
        samples: list[tuple[int, str, GpuSample]] = []
        for message in messages:
            if message.topic() != topic:
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            decoded = decode_sample(message.value())
            if isinstance(decoded, SampleRejection):
                self.metrics.samples_consumed.labels(decoded.reason).inc()
                self._sample_offsets.setdefault(partition, deque()).append((0.0, offset))
                continue
            samples.append((partition, *decoded))
            self._sample_offsets.setdefault(partition, deque()).append((decoded[1].t, offset))
        if samples:
            self._in_loop(self._add_samples(samples))
        self._store_sample_offsets(consumer)
        return [m for m in messages if m.topic() != topic]

    def _store_sample_offsets(self, consumer: Consumer) -> None:
        """Samples are committed once they are too old to be needed: a restarted or new
        owner reads the recent ones again and rebuilds its buffers from them, so the
        windows it writes next have every sample (those written already are skipped)."""
        horizon = self.clock() - self.retention_s / 2
        done: list[TopicPartition] = []
        for partition, marks in self._sample_offsets.items():
            last = None
            while marks and marks[0][0] < horizon:
                last = marks.popleft()[1]
            if last is not None:
                done.append(TopicPartition(self.settings.samples_topic, partition, last + 1))
        if done:
            consumer.store_offsets(offsets=done)

    async def _add_samples(self, samples: list[tuple[int, str, GpuSample]]) -> None:
        for partition, node, sample in samples:
            self.node_partition[node] = partition
            first_sight = (node, str(sample.gpu_index)) not in self.buffers
            gpu = self._add_sample(node, sample)
            if gpu is None:
                self.metrics.samples_consumed.labels("refused").inc()
                continue
            self.metrics.samples_consumed.labels("ok").inc()
            if first_sight:
                # Idle windows this GPU's previous owner (or this processor before a
                # restart) already wrote are not written again.
                written = await self.store.last_written_ms(*gpu)
                if written is not None:
                    self.windows.schedule.start_sampled_after(gpu, written)

    def _owns(self, key: WindowKey) -> bool:
        return self.node_partition.get(key[0]) in self.owned_partitions

    async def _take_over(self, partitions: set[int]) -> None:
        """Newly owned partitions: their nodes' windows with unwritten events, as the
        previous owner (or this processor before a restart) left them in MongoDB."""
        self.owned_partitions |= partitions
        for partition in sorted(partitions):
            keys = await self.store.pending_windows({partition})
            for node, _gpu, _start in keys:
                self.node_partition[node] = partition
            self.windows.schedule.mark_events(set(keys))

    async def _hand_over(self, partitions: set[int]) -> None:
        """Partitions going to another processor: stop writing their nodes' windows.
        Their unwritten windows stay in pending_windows for the new owner; a write in
        progress finishes first (its lock), so no window is written by two at once."""
        self.owned_partitions -= partitions
        nodes = {node for node, p in self.node_partition.items() if p in partitions}
        gpus = {gpu for gpu in self.buffers if gpu[0] in nodes}
        gpus |= {(k[0], k[1]) for k in self.windows.schedule.dirty if k[0] in nodes}
        self.windows.schedule.forget(gpus)
        for gpu in gpus:
            self.buffers.pop(gpu, None)
        held = [k for k in self.windows.locks.held() if isinstance(k, tuple) and k[0] in nodes]
        async with self.windows.locks.hold(held):
            pass

    def _in_loop(self, coroutine: Any) -> Any:
        """Run a coroutine on the event loop from the consumer thread and wait for it."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sample_interval_s)
            try:
                await self._sample_once()
            except Exception as error:  # a flaky GPU read must not stop the pipeline
                log.warning("GPU sample failed: %s", error)

    # ---- windows ---------------------------------------------------------------------

    async def _write_windows_forever(self) -> None:
        # Fine-grained: `due` is a look at in-memory state, and each tick of delay is a
        # tick later that a closed window's events get their cost.
        tick = min(0.25, self.settings.window_s / 4)
        while True:
            await asyncio.sleep(tick)
            await self._write_due_windows()

    async def _write_due_windows(self) -> None:
        await self.windows.write_due(
            caught_up=self._caught_up,
            event_time=self._event_time,
            samples_from_kafka=self.source is None,
        )

    async def _ping_forever(self) -> None:
        while True:
            try:
                await self.store.ping(timeout_s=2.0)
                self.health.mongo_ok = True
                self.health.mongo_error = None
            except PyMongoError as error:
                self.health.mongo_ok = False
                self.health.mongo_error = f"{type(error).__name__}: {error}"[:300]
            await asyncio.sleep(1.0)

    # ---- readiness -------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        h = self.health
        now = self.clock()
        poll_age = None if h.last_poll is None else round(now - h.last_poll, 3)
        checks: dict[str, Any] = {
            "mongodb": {"ok": h.mongo_ok, "error": h.mongo_error},
            "kafka": {
                "ok": poll_age is not None and poll_age < 15,
                "assigned_partitions": h.kafka_assigned,
                "last_poll_age_s": poll_age,
                "last_error": h.kafka_error,
            },
            "gpu_source": {"ok": True, "name": h.gpu_source, "skipped": h.gpu_notes},
            "lag": {
                "ok": h.lag is None or h.lag <= self.settings.ready_max_lag,
                "messages": h.lag,
            },
            "last_write_age_s": None if h.last_write is None else round(now - h.last_write, 3),
            "stopping": h.stopping,
        }
        ok = (
            not h.stopping
            and checks["mongodb"]["ok"]
            and checks["kafka"]["ok"]
            and checks["lag"]["ok"]
        )
        return bool(ok), checks


def _fatal_hint(error: KafkaError) -> str:
    if "fenced" in error.str().lower():
        return "another processor uses the same KAFKA_GROUP_INSTANCE_ID: give each its own"
    return "see the broker's log; restarting the processor makes a new consumer"


def _next_offsets(batch: Sequence[Message]) -> list[TopicPartition]:
    """The offset to resume from per partition: one past the last message written."""
    last: dict[tuple[str, int], int] = {}
    for message in batch:
        key = (message.topic() or "", message.partition() or 0)
        last[key] = max(last.get(key, -1), message.offset() or 0)
    return [
        TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()
    ]
