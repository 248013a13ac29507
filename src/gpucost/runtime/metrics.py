"""Prometheus metrics of one processor. A registry per instance keeps tests independent."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.consumed = Counter("gpucost_events_consumed", "Messages read from Kafka.", registry=r)
        self.written = Counter(
            "gpucost_events_written", "Events newly written to token_usage.", registry=r
        )
        self.duplicates = Counter(
            "gpucost_events_duplicate", "Redelivered events already stored.", registry=r
        )
        self.dead_lettered = Counter(
            "gpucost_events_dead_lettered",
            "Invalid messages sent to the dead-letter topic.",
            ["reason"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "gpucost_batch_seconds",
            "Time to validate and write one batch.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.lag = Gauge("gpucost_consumer_lag", "Messages not yet consumed.", registry=r)
        self.windows_written = Counter(
            "gpucost_windows_written", "Window documents written to gpu_metrics.", registry=r
        )
        self.last_write = Gauge(
            "gpucost_last_write_timestamp_seconds", "When MongoDB last acknowledged.", registry=r
        )
        self.cost_per_token = Gauge(
            "gpucost_cost_per_token_usd",
            "Cost per token in the last window.",
            ["node", "gpu"],
            registry=r,
        )
        self.cost_per_million = Gauge(
            "gpucost_cost_per_million_tokens_usd",
            "Cost per million tokens in the last window.",
            ["node", "gpu"],
            registry=r,
        )
        self.gpu_power = Gauge(
            "gpucost_gpu_power_watts", "Last sampled GPU power.", ["node", "gpu"], registry=r
        )
        self.readings_dropped = Counter(
            "gpucost_gpu_readings_dropped",
            "GPU readings dropped as impossible (NaN, infinite, out of range).",
            ["field"],
            registry=r,
        )
        self.samples_consumed = Counter(
            "gpucost_gpu_samples_consumed",
            "GPU samples read from the samples topic, by outcome.",
            ["outcome"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
