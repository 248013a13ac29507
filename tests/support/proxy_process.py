"""A real `gpucost-proxy` process for tests: started from its entry point, by environment."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from support.pipeline import free_port, wait_until


@dataclass
class ProxyProcess:
    env: dict[str, str]
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = self.port or free_port()
        self.env["PROXY_PORT"] = str(self.port)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gpucost.runtime.proxy.main"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self._healthy, timeout=60, what="gpucost-proxy /health")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as a service manager stops it; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        rc = self.process.wait(timeout)
        self.process = None
        return rc

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def metric(self, name: str) -> float:
        for line in httpx.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        raise AssertionError(f"no {name} in /metrics")

    def log_lines(self) -> list[dict[str, object]]:
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
        return lines

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"gpucost-proxy exited: {self.log_path.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
