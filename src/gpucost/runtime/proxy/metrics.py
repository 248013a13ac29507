"""The proxy's Prometheus metrics, on its own registry (one per app keeps tests apart)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ProxyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gpucost_proxy_requests",
            "Requests forwarded, by upstream status.",
            ["status"],
            registry=r,
        )
        self.latency = Histogram(
            "gpucost_proxy_request_seconds",
            "Request time through the proxy, to the last byte.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.upstream_retries = Counter(
            "gpucost_proxy_upstream_retries",
            "Requests sent again after the upstream closed a pooled connection unanswered.",
            registry=r,
        )
        self.events = Counter("gpucost_proxy_events", "Token events made.", registry=r)
        self.published = Counter(
            "gpucost_proxy_events_published", "Events the broker acknowledged.", registry=r
        )
        self.spooled = Counter(
            "gpucost_proxy_events_spooled", "Events written to the on-disk spool.", registry=r
        )
        self.replayed = Counter(
            "gpucost_proxy_events_replayed", "Spooled events the broker acknowledged.", registry=r
        )
        self.dropped = Counter(
            "gpucost_proxy_events_dropped", "Events lost to a full spool.", registry=r
        )
        self.spooled_now = Gauge(
            "gpucost_proxy_spool_events", "Events in the spool now.", registry=r
        )
