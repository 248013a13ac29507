"""SecantusDB's Rust server against its Python server, on the processor's own writes.

Starts both servers (no auth, loopback, fresh data dirs, ephemeral ports), then runs the
same workload against each, one after the other, in one run:
  1. insert_many of N token_usage documents (batches of 500, the `window` index in place)
  2. the cost update of every window: one pipeline update_many per (gpu, window)
  3. the count of every window: one $group aggregate per (gpu, window)
The result is rust ÷ py per operation; absolute figures are printed for the record.

    make venv && scripts/dev/secantus-fetch.sh && .venv/bin/python benchmarks/mongo_servers.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, MongoClient

from gpucost.runtime.documents import event_document
from gpucost.runtime.events import TokenEvent

ROOT = Path(__file__).resolve().parent.parent
GPUS = 4
WINDOW_S = 10.0
PER_WINDOW = 2000  # events per (gpu, window): 200 events/s per GPU


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def documents(count: int) -> list[dict[str, Any]]:
    start = 1_795_000_000.0
    docs = []
    for i in range(count):
        window = i // (PER_WINDOW * GPUS)
        event = TokenEvent(
            v=1,
            event_id=uuid.uuid4(),
            ts=start + window * WINDOW_S + (i % PER_WINDOW) * WINDOW_S / PER_WINDOW,
            model="llama-3.1-8b",
            gpu=i % GPUS,
            node="bench",
            prompt_tokens=512,
            completion_tokens=128,
        )
        docs.append(
            event_document(
                event, str(i % GPUS), WINDOW_S, partition=0, offset=i, received_at=event.ts
            )
        )
    return docs


class Server:
    def __init__(self, name: str, binary: str, data: Path) -> None:
        self.name = name
        self.port = free_port()
        (data / name).mkdir()
        config = data / f"{name}.toml"
        config.write_text("# empty: every setting is a flag\n")
        argv = [binary, "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--storage-path", str(data / name), "--cache-size", "256M"]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client: MongoClient[dict[str, Any]] = MongoClient(
            "127.0.0.1", self.port, directConnection=True, serverSelectionTimeoutMS=30_000
        )
        self.client.admin.command("ping")

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(30)


def measure(server: Server, docs: list[dict[str, Any]]) -> dict[str, float]:
    coll = server.client.bench.token_usage
    coll.drop()
    coll.create_index([("gpu", ASCENDING), ("window_start", ASCENDING)], name="window")
    windows = sorted({(d["gpu"], d["window_start"]) for d in docs})

    started = time.perf_counter()
    for i in range(0, len(docs), 500):
        coll.insert_many([dict(d) for d in docs[i : i + 500]], ordered=False)
    insert_s = time.perf_counter() - started

    started = time.perf_counter()
    for gpu, window_start in windows:
        coll.update_many(
            {"gpu": gpu, "window_start": window_start},
            [
                {
                    "$set": {
                        "cost_per_token": 1e-7,
                        "allocated_cost_usd": {"$multiply": ["$total_tokens", 1e-7]},
                        "costed": True,
                    }
                }
            ],
        )
    update_s = time.perf_counter() - started

    started = time.perf_counter()
    for gpu, window_start in windows:
        rows = list(
            coll.aggregate(
                [
                    {"$match": {"gpu": gpu, "window_start": window_start}},
                    {"$group": {"_id": None, "n": {"$sum": 1}, "t": {"$sum": "$total_tokens"}}},
                ]
            )
        )
        assert rows[0]["n"] == PER_WINDOW, rows
    count_s = time.perf_counter() - started
    assert coll.count_documents({"costed": True}) == len(docs)
    coll.drop()
    n = len(docs)
    return {
        "insert_docs_per_s": round(n / insert_s),
        "cost_update_docs_per_s": round(n / update_s),
        "window_count_docs_per_s": round(n / count_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--rust", default=None, help="secantusd-rs (default: secantus-fetch.sh)")
    parser.add_argument("--py", default=str(ROOT / ".venv" / "bin" / "secantusd-py"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rust = (
        args.rust
        or subprocess.run(
            [str(ROOT / "scripts" / "dev" / "secantus-fetch.sh")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    docs = documents(args.events)
    data = Path(tempfile.mkdtemp(prefix="gpucost-bench-mongo-"))
    results: dict[str, dict[str, float]] = {}
    try:
        for name, binary in (("py", args.py), ("rust", rust)):
            server = Server(name, binary, data)
            try:
                results[name] = measure(server, docs)
            finally:
                server.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    ratios = {k: round(results["rust"][k] / results["py"][k], 1) for k in results["py"]}
    report = {"events": args.events, **results, "rust_over_py": ratios}
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return
    print(f"{args.events:,} token_usage documents, {GPUS} GPUs, {PER_WINDOW:,} per window")
    print(f"{'':26}{'py':>10}{'rust':>10}{'rust ÷ py':>11}")
    for key, ratio in ratios.items():
        py, rs = results["py"][key], results["rust"][key]
        print(f"{key:26}{py:>10,.0f}{rs:>10,.0f}{ratio:>10}x")


if __name__ == "__main__":
    main()
