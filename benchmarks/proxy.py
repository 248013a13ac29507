"""What `gpucost-proxy` adds to a request: latency and requests/s against the upstream alone.

One run, interleaved: rounds alternate between calling llama-server directly and calling
it through the proxy (which publishes every event to the real broker), so both see the
same machine load. Each round sends --requests chat requests from --concurrency clients,
non-streamed and streamed (half each). Reported: p50 and p99 of request latency to the
last byte, requests/s per round, and the ratios proxy / direct.

The upstream is llama.cpp's llama-server (scripts/dev/llama-fetch.sh) serving the tests'
tiny random-weight model, so most of a request is HTTP and scheduling, not arithmetic:
the worst case for a proxy's relative overhead. Needs a broker (scripts/dev/services.sh).

    .venv/bin/python benchmarks/proxy.py --bootstrap 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.llama import LlamaServer, cached_model, fetch_llama_server  # noqa: E402
from support.proxy_process import ProxyProcess  # noqa: E402


def chat(stream: bool) -> dict[str, Any]:
    return {
        "model": "tiny-random-llama",
        "messages": [{"role": "user", "content": "What does a token cost?"}],
        "max_tokens": 16,
        "temperature": 0,
        "stream": stream,
    }


RETRIED: dict[str, int] = {}


async def one(client: httpx.AsyncClient, url: str, stream: bool) -> float:
    """One request's time to its last byte. A request that meets a keep-alive connection
    the server had closed (llama-server closes some) is sent again, counted in RETRIED
    and timed from the first try, as a client library with retries would see it."""
    started = time.perf_counter()
    try:
        await send(client, url, stream)
    except (httpx.RemoteProtocolError, httpx.ReadError):
        RETRIED[url] = RETRIED.get(url, 0) + 1
        await send(client, url, stream)
    return time.perf_counter() - started


async def send(client: httpx.AsyncClient, url: str, stream: bool) -> None:
    if stream:
        async with client.stream("POST", url, json=chat(True)) as answer:
            async for _ in answer.aiter_raw():
                pass
            assert answer.status_code == 200
    else:
        answer = await client.post(url, json=chat(False))
        assert answer.status_code == 200


async def round_of(base: str, requests: int, concurrency: int) -> tuple[list[float], float]:
    url = f"{base}/v1/chat/completions"
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    latencies: list[float] = []
    headers = {"authorization": "Bearer sk-bench"}

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            latencies.append(await one(client, url, stream=i % 2 == 1))

    async with httpx.AsyncClient(timeout=120, headers=headers) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, requests / elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--rounds", type=int, default=8, help="Rounds per side (interleaved).")
    parser.add_argument("--requests", type=int, default=400, help="Requests per round.")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    binary = fetch_llama_server()
    model = cached_model(binary)
    topic = f"bench.proxy.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    with tempfile.TemporaryDirectory() as tmp:
        server = LlamaServer(binary, model, Path(tmp) / "llama.log")
        server.start()
        proxy = ProxyProcess(
            {
                **os.environ,
                "PROXY_UPSTREAMS": f"llama={server.url}@bench:0",
                "KAFKA_BOOTSTRAP": args.bootstrap,
                "KAFKA_TOPIC": topic,
                "PROXY_SPOOL_DIR": str(Path(tmp) / "spool"),
                "PROXY_LOG_LEVEL": "WARNING",
            },
            Path(tmp) / "proxy.log",
        )
        proxy.start()
        try:
            # Warm both paths (connections, the server's prompt cache) before measuring.
            asyncio.run(round_of(server.url, 20, args.concurrency))
            asyncio.run(round_of(proxy.url, 20, args.concurrency))
            sides: dict[str, dict[str, list[float]]] = {
                "direct": {"latency": [], "rps": []},
                "proxy": {"latency": [], "rps": []},
            }
            for _ in range(args.rounds):
                for name, base in (("direct", server.url), ("proxy", proxy.url)):
                    latencies, rps = asyncio.run(round_of(base, args.requests, args.concurrency))
                    sides[name]["latency"] += latencies
                    sides[name]["rps"].append(rps)
            # Every proxied request's event acknowledged by the broker: nothing lost.
            sent = 20 + args.rounds * args.requests
            deadline = time.monotonic() + 60
            while (published := proxy.metric("gpucost_proxy_events_published_total")) < sent:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            upstream_retries = proxy.metric("gpucost_proxy_upstream_retries_total")
        finally:
            proxy.kill()
            server.stop()
            admin.delete_topics([topic])
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "rounds": args.rounds,
        "requests_per_round": args.requests,
        "concurrency": args.concurrency,
        "events_made": sent,
        "events_published": published,
        "retried": {
            "direct": RETRIED.get(f"{server.url}/v1/chat/completions", 0),
            "proxy": RETRIED.get(f"{proxy.url}/v1/chat/completions", 0),
            "proxy_to_upstream": upstream_retries,
        },
    }
    for name, side in sides.items():
        result[name] = {
            "p50_ms": round(percentile(side["latency"], 0.5) * 1000, 2),
            "p99_ms": round(percentile(side["latency"], 0.99) * 1000, 2),
            "rps": round(statistics.median(side["rps"]), 1),
        }
    result["ratios_proxy_over_direct"] = {
        key: round(result["proxy"][key] / result["direct"][key], 3)
        for key in ("p50_ms", "p99_ms", "rps")
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
