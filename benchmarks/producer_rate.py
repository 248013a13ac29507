"""How fast `gpucost-producer` publishes to a real broker, and how exactly it paces.

1. Max rate: the producer's loop (synthetic events, --rate 10,000,000) for --seconds,
   counted until every event is acknowledged, against a raw confluent-kafka loop producing
   the same number of pre-encoded events with the same client settings. The ratio is what
   making, encoding and counting events costs on top of the client itself.
2. Pacing (with --pacing, takes --pacing-seconds, default 60): --rate 50, events acked
   per second against 50.

The process is pinned to one CPU (librdkafka's threads too) unless --cpu -1, so the
rates are "on one core". Needs a broker: scripts/dev/services.sh start.

    .venv/bin/python benchmarks/producer_rate.py --bootstrap 127.0.0.1:9092 --pacing
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import uuid
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from gpucost.runtime.events import TokenEvent, encode_event
from gpucost.runtime.producer import Publisher, Summary, producer_config, run
from gpucost.runtime.ratelimit import TokenBucket
from gpucost.runtime.synthetic import SyntheticEvents, SyntheticSource


def make_topic(bootstrap: str, partitions: int) -> str:
    name = f"bench.producer.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)
    return name


def drop_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([topic])[topic].result(timeout=30)


class Timed(SyntheticSource):
    """Records when each event was released, on a clock the loop does not use."""

    def __init__(self, events: SyntheticEvents, bucket: TokenBucket) -> None:
        super().__init__(events, bucket)
        self.released: list[float] = []

    def due(self, most: int) -> list[TokenEvent]:
        batch = super().due(most)
        self.released.extend([time.perf_counter()] * len(batch))
        return batch


def producer_loop(
    bootstrap: str, topic: str, rate: float, seconds: float
) -> tuple[Summary, list[float]]:
    publisher = Publisher.connect(bootstrap, topic)
    publisher.wait_for_broker(30)
    source = Timed(
        SyntheticEvents(node="bench", producer="bench", gpus=4, seed=1), TokenBucket(rate)
    )
    return run(source, publisher, duration=seconds), source.released


def raw_loop(bootstrap: str, topic: str, n: int) -> dict[str, Any]:
    events = SyntheticEvents(node="bench", producer="bench", gpus=4, seed=2)
    messages = [(encode_event(e), str(e.gpu)) for e in events.batch(n)]
    acked = 0

    def delivered(error: Any, _message: Any) -> None:
        nonlocal acked
        acked += error is None

    client = Producer({**producer_config(bootstrap), "on_delivery": delivered})
    client.list_topics(topic, timeout=30)  # connect before the clock starts, as the producer does
    start = time.perf_counter()
    for i, (value, key) in enumerate(messages):
        while True:
            try:
                client.produce(topic, value, key)
                break
            except BufferError:
                client.poll(0.05)
        if i % 1000 == 0:
            client.poll(0)
    client.flush(60)
    elapsed = time.perf_counter() - start
    return {"sent": n, "acked": acked, "elapsed_s": round(elapsed, 3), "rate": round(n / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--seconds", type=float, default=5.0, help="max-rate run length")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=0, help="pin to this CPU; -1: no pinning")
    parser.add_argument("--pacing", action="store_true", help="also measure pacing at 50/s")
    parser.add_argument("--pacing-seconds", type=float, default=60.0)
    args = parser.parse_args()

    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})  # before any client starts its threads
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "pinned_cpu": args.cpu if args.cpu >= 0 else None,
    }
    topic = make_topic(args.bootstrap, args.partitions)
    try:
        fast, _ = producer_loop(args.bootstrap, topic, 10_000_000, args.seconds)
        raw = raw_loop(args.bootstrap, topic, fast.sent)
        result["max_rate"] = {
            "producer": fast.as_dict(),
            "raw_confluent_kafka": raw,
            "ratio_producer_to_raw": round(fast.rate / raw["rate"], 3),
        }
        if args.pacing:
            paced, released = producer_loop(args.bootstrap, topic, 50.0, args.pacing_seconds)
            # Rate between the first and last release, timed outside the loop's own clock;
            # lag: how far any event fell behind its ideal instant first + i/50.
            span = released[-1] - released[0]
            achieved = (len(released) - 1) / span
            lag = max(t - (released[0] + i / 50.0) for i, t in enumerate(released))
            result["pacing"] = {
                "target_rate": 50.0,
                "seconds": args.pacing_seconds,
                "acked": paced.acked,
                "achieved_rate": round(achieved, 3),
                "error_pct": round(100 * (achieved - 50.0) / 50.0, 3),
                "max_lag_ms": round(lag * 1000, 2),
            }
    finally:
        drop_topic(args.bootstrap, topic)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
