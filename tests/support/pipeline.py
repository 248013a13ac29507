"""Shared helpers for tests that run a real processor."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


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

    def _health_ok(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"processor exited: {self.log_path.read_text()[-2000:]}")
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
