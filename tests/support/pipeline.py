"""Shared helpers for tests that run a real processor."""

from __future__ import annotations

import dataclasses
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from support.streams import group_lag


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pipeline:
    topic: str
    dlq_topic: str
    prefix: str
    bootstrap: str
    env: dict[str, str]
    http: str
    db: Any
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    siblings: list[Pipeline] = field(default_factory=list)

    @property
    def pending_windows(self) -> Any:
        return self.db[f"{self.prefix}pending_windows"]

    @property
    def samples_topic(self) -> str:
        return self.env["SAMPLES_TOPIC"]

    @property
    def group(self) -> str:
        return self.env["KAFKA_GROUP"]

    @property
    def pid(self) -> int:
        assert self.process is not None, "not running"
        return self.process.pid

    def sibling(self, **settings: str) -> Pipeline:
        """Another processor on the same topic, group and collections (scale-out), with its
        own HTTP port and log."""
        port = free_port()
        env = {**self.env, "HTTP_PORT": str(port), **settings}
        log = self.log_path.with_name(f"{self.log_path.stem}-{len(self.siblings) + 1}.log")
        other = dataclasses.replace(
            self, env=env, http=f"http://127.0.0.1:{port}", log_path=log, process=None, siblings=[]
        )
        self.siblings.append(other)
        return other

    def all_processes(self) -> Iterator[subprocess.Popen[bytes]]:
        for pipeline in (self, *self.siblings):
            if pipeline.process is not None:
                yield pipeline.process

    def kill(self) -> None:
        """`kill -9`: no drain, no commit, no goodbye to the group."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def ready(self) -> int | None:
        """The status code of `/ready`, or None when nothing answers."""
        try:
            return httpx.get(f"{self.http}/ready", timeout=1).status_code
        except httpx.HTTPError:
            return None

    def assigned_partitions(self) -> int:
        """How many partitions this processor consumes, as `/ready` reports it."""
        try:
            body = httpx.get(f"{self.http}/ready", timeout=1).json()
        except httpx.HTTPError:
            return 0
        return int(body["checks"]["kafka"]["assigned_partitions"])

    def metric(self, name: str) -> float:
        """One unlabelled sample of `/metrics`, e.g. `gpucost_events_consumed_total`."""
        for line in httpx.get(f"{self.http}/metrics", timeout=5).text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        raise AssertionError(f"no {name} in /metrics")

    def lag(self) -> int:
        """What this processor's group has not committed past on its topic."""
        return group_lag(self.bootstrap, self.group, self.topic)

    @property
    def token_usage(self) -> Any:
        return self.db[f"{self.prefix}token_usage"]

    @property
    def gpu_metrics(self) -> Any:
        return self.db[f"{self.prefix}gpu_metrics"]

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gpucost.runtime.processor_main"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: self._health_ok(), timeout=60, what="processor /health")

    def stop(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.terminate()
        rc = self.process.wait(timeout)
        self.process = None
        return rc

    def assert_running(self) -> None:
        """Fail at once, with the end of its log, when the processor has exited."""
        assert self.process is not None, "not started"
        if self.process.poll() is not None:
            raise AssertionError(f"processor exited: {self.log_path.read_text()[-2000:]}")

    def _health_ok(self) -> bool:
        self.assert_running()
        try:
            return httpx.get(f"{self.http}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
