"""Pipeline benchmark: the processor against raw clients of the same services, in one run.

Measures, against the real broker and database started by scripts/dev/services.sh:
  1. raw confluent-kafka consume of a topic holding N events           (baseline A)
  2. raw insert_many of the same documents into the same server        (baseline B; and
     B', into a collection with the processor's window index)
  3. the processor draining the same N-event backlog                   → ratios to A and B
  4. end to end: producer at full speed while the processor runs       → events/s
  5. at a fixed rate (default 1,000/s): p50/p99 from produce to the event's document, and
     to its cost being filled in, by polling a 1 % sample of event ids

Ratios, not absolute figures, are the result: this machine is noisy.

    make services && .venv/bin/python benchmarks/pipeline.py --events 100000
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from pymongo import ASCENDING, MongoClient

from gpucost.runtime.documents import event_document
from gpucost.runtime.events import TokenEvent, encode_event
from gpucost.runtime.kafka import ensure_topics

ROOT = Path(__file__).resolve().parent.parent


def load_env() -> dict[str, str]:
    env = dict(os.environ)
    path = ROOT / ".services" / "env"
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            env.setdefault(key.strip(), value.strip())
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_event(ts: float) -> TokenEvent:
    return TokenEvent(
        v=1,
        event_id=uuid.uuid4(),
        ts=ts,
        model="llama-3.1-8b",
        gpu=0,
        node="bench",
        prompt_tokens=512,
        completion_tokens=128,
    )


def produce(bootstrap: str, topic: str, payloads: list[bytes]) -> float:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    started = time.perf_counter()
    for payload in payloads:
        while True:
            try:
                producer.produce(topic, payload, key=b"0")
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    return time.perf_counter() - started


def raw_consume(bootstrap: str, topic: str, count: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    started = None
    while seen < count:
        batch = consumer.consume(2000, 1.0)
        if batch and started is None:
            started = time.perf_counter()
        seen += sum(1 for m in batch if m.error() is None)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return elapsed


def raw_insert(
    uri: str, collection: str, docs: list[dict[str, Any]], batch: int, *, indexed: bool = False
) -> float:
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    coll = client.get_default_database()[collection]
    coll.drop()
    if indexed:
        # The processor's own index on token_usage (runtime/mongo.py).
        coll.create_index([("gpu", ASCENDING), ("window_start", ASCENDING)], name="window")
    started = time.perf_counter()
    for i in range(0, len(docs), batch):
        coll.insert_many([dict(d) for d in docs[i : i + batch]], ordered=False)
    elapsed = time.perf_counter() - started
    coll.drop()
    client.close()
    return elapsed


class Processor:
    def __init__(self, env: dict[str, str], topic: str, window_s: float) -> None:
        self.port = free_port()
        self.prefix = f"{topic}_"
        self.env = {
            **env,
            "PRICE_PER_HOUR_USD": "3.5",
            "KAFKA_TOPIC": topic,
            "KAFKA_DLQ_TOPIC": f"{topic}.dlq",
            "KAFKA_GROUP": f"{topic}-group",
            "MONGODB_COLLECTION_PREFIX": self.prefix,
            "GPU_SOURCE": "seed",
            "WINDOW_S": str(window_s),
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.port),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gpucost.runtime.processor_main"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while self.metric("gpucost_consumer_lag") is None:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("processor did not start")
            time.sleep(0.2)

    def metric(self, name: str) -> float | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def wait_written(self, count: int, timeout: float = 600) -> float:
        deadline = time.monotonic() + timeout
        while (self.metric("gpucost_events_written_total") or 0) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"processor wrote fewer than {count} events in {timeout}s")
            time.sleep(0.05)
        return time.perf_counter()

    def stop(self) -> float:
        """SIGTERM, and how long the drain took (killed after 120 s)."""
        started = time.perf_counter()
        self.process.terminate()
        try:
            self.process.wait(120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_run(
    env: dict[str, str], rate: float, seconds: float, window_s: float
) -> dict[str, Any]:
    topic = f"bench_lat_{uuid.uuid4().hex[:8]}"
    ensure_topics(env["KAFKA_BOOTSTRAP"], [topic, f"{topic}.dlq"], 3)
    processor = Processor(env, topic, window_s)
    client: MongoClient[dict[str, Any]] = MongoClient(env["MONGODB_URI"])
    coll = client.get_default_database()[f"{processor.prefix}token_usage"]
    producer = Producer({"bootstrap.servers": env["KAFKA_BOOTSTRAP"], "linger.ms": 2})
    sent_at: dict[str, float] = {}
    doc_latency: dict[str, float] = {}
    cost_latency: dict[str, float] = {}
    total = int(rate * seconds)
    started = time.time()
    next_poll = 0.0
    i = 0
    while i < total or len(cost_latency) < len(sent_at):
        now = time.time()
        due = min(total, int((now - started) * rate))
        while i < due:
            event = make_event(time.time())
            producer.produce(topic, encode_event(event), key=b"0")
            if i % 100 == 0:
                sent_at[str(event.event_id)] = event.ts  # type: ignore[assignment]
            i += 1
        producer.poll(0)
        if now >= next_poll:
            next_poll = now + 0.02
            pending = [k for k in sent_at if k not in cost_latency]
            if pending:
                for doc in coll.find({"_id": {"$in": pending}}, {"costed": 1}):
                    seen = time.time()
                    doc_latency.setdefault(doc["_id"], seen - sent_at[doc["_id"]])
                    if doc["costed"]:
                        cost_latency[doc["_id"]] = seen - sent_at[doc["_id"]]
        if time.time() - started > seconds + window_s + 60:
            break
        time.sleep(0.002)
    producer.flush(30)
    drain_s = processor.stop()
    coll.drop()
    client.get_default_database()[f"{processor.prefix}gpu_metrics"].drop()
    client.close()
    docs = list(doc_latency.values())
    costs = list(cost_latency.values())
    return {
        "rate": rate,
        "seconds": seconds,
        "sampled": len(sent_at),
        "doc_p50_s": round(statistics.median(docs), 3),
        "doc_p99_s": round(percentile(docs, 0.99), 3),
        "cost_p50_s": round(statistics.median(costs), 3) if costs else None,
        "cost_p99_s": round(percentile(costs, 0.99), 3) if costs else None,
        "cost_goal_s": window_s + 2,
        "sigterm_drain_s": round(drain_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000, help="the processor's BATCH_MAX")
    parser.add_argument("--latency-rate", type=float, default=1000)
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument("--window", type=float, default=10)
    parser.add_argument(
        "--latency-only", action="store_true", help="skip the throughput phases (1-4)"
    )
    args = parser.parse_args()
    env = load_env()
    bootstrap, uri = env["KAFKA_BOOTSTRAP"], env["MONGODB_URI"]
    env["BATCH_MAX"] = str(args.batch)
    n = args.events
    results: dict[str, Any] = {"events": n, "machine_cpus": os.cpu_count()}
    if args.latency_only:
        results["latency"] = latency_run(env, args.latency_rate, args.latency_seconds, args.window)
        print(json.dumps(results, indent=2))
        return

    topic = f"bench_{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic, f"{topic}.dlq"], 3)
    events = [make_event(time.time()) for _ in range(n)]
    payloads = [encode_event(e) for e in events]
    results["produce_s"] = round(produce(bootstrap, topic, payloads), 3)

    consume_s = raw_consume(bootstrap, topic, n)
    results["raw_consume_eps"] = round(n / consume_s)

    docs = [
        event_document(e, "0", args.window, partition=0, offset=i, received_at=time.time())
        for i, e in enumerate(events)
    ]
    insert_s = raw_insert(uri, f"bench_raw_{uuid.uuid4().hex[:8]}", docs, args.batch)
    results["raw_insert_many_eps"] = round(n / insert_s)
    indexed_s = raw_insert(uri, f"bench_raw_{uuid.uuid4().hex[:8]}", docs, args.batch, indexed=True)
    results["raw_insert_many_indexed_eps"] = round(n / indexed_s)

    processor = Processor(env, topic, args.window)
    # Timed from the first acknowledged batch: start-up and group join are not throughput.
    processor.wait_written(1)
    started, first = time.perf_counter(), processor.metric("gpucost_events_written_total") or 0
    finished = processor.wait_written(n)
    processor.stop()
    results["processor_eps"] = round((n - first) / (finished - started))
    results["processor_vs_raw_consume"] = round(
        results["processor_eps"] / results["raw_consume_eps"], 3
    )
    results["processor_vs_raw_insert_many"] = round(
        results["processor_eps"] / results["raw_insert_many_eps"], 3
    )
    results["processor_vs_raw_insert_many_indexed"] = round(
        results["processor_eps"] / results["raw_insert_many_indexed_eps"], 3
    )
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    db = client.get_default_database()
    stored = db[f"{processor.prefix}token_usage"].count_documents({})
    results["processor_stored"] = stored
    db[f"{processor.prefix}token_usage"].drop()
    db[f"{processor.prefix}gpu_metrics"].drop()

    # End to end: the processor runs first; events are produced at full speed into it.
    topic2 = f"bench_e2e_{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic2, f"{topic2}.dlq"], 3)
    processor = Processor(env, topic2, args.window)
    started = time.perf_counter()
    produce(bootstrap, topic2, [encode_event(make_event(time.time())) for _ in range(n)])
    finished = processor.wait_written(n)
    processor.stop()
    results["end_to_end_eps"] = round(n / (finished - started))
    db[f"{processor.prefix}token_usage"].drop()
    db[f"{processor.prefix}gpu_metrics"].drop()
    client.close()

    try:
        results["latency"] = latency_run(env, args.latency_rate, args.latency_seconds, args.window)
    finally:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
