"""The Docker engine on this machine: run docker commands, and make sure an
engine answers (install docker.io and start dockerd when it does not).

CI machines start with no engine running and no systemd as PID 1, so the
provider starts `dockerd` itself, detached, with a pidfile and a log.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from gpucost.errors import GpucostError
from gpucost.remote.providers.base import Progress, ProgressEvent, no_progress
from gpucost.remote.providers.local_commands import docker_info

DOCKERD_PIDFILE: Final = Path("/run/gpucost-dockerd.pid")
DOCKERD_LOG: Final = Path("/var/log/gpucost-dockerd.log")
ENGINE_START_TIMEOUT_S: Final = 60.0
COMMAND_TIMEOUT_S: Final = 300.0

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class LocalError(GpucostError):
    """Docker, debootstrap or a local host did not do what was asked."""


class Docker:
    """Runs the argv lists of `local_commands`; every failure becomes one
    LocalError naming the command and docker's own last line."""

    def __init__(self, runner: Runner = subprocess.run) -> None:
        self._runner = runner

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float = COMMAND_TIMEOUT_S,
    ) -> subprocess.CompletedProcess[str]:
        try:
            result = self._runner(
                list(argv),
                capture_output=True,
                text=True,
                input=input,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise LocalError(
                f"{argv[0]} is not installed", hint="apt-get install -y docker.io debootstrap"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise LocalError(f"`{' '.join(argv[:4])} ...` took over {timeout:.0f}s") from exc
        if check and result.returncode != 0:
            raise LocalError(
                f"`{' '.join(argv[:4])}` failed: {_last_line(result.stderr or result.stdout)}",
                hint=f"see `docker info` and {DOCKERD_LOG}",
            )
        return result

    def ok(self, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT_S) -> bool:
        return self.run(argv, check=False, timeout=timeout).returncode == 0

    def lines(self, argv: Sequence[str]) -> list[str]:
        return [line for line in self.run(argv).stdout.splitlines() if line.strip()]

    def inspect(self, argv: Sequence[str]) -> list[dict[str, Any]]:
        """`docker inspect`-style JSON; [] when the object does not exist."""
        result = self.run(argv, check=False)
        if result.returncode != 0:
            return []
        data = json.loads(result.stdout or "[]")
        return data if isinstance(data, list) else [data]

    def answers(self) -> bool:
        try:
            return self.ok(docker_info(), timeout=15)
        except LocalError:  # no docker CLI at all
            return False


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def ensure_engine(docker: Docker, progress: Progress = no_progress) -> None:
    """An engine that answers `docker info`, installed and started if need be."""
    if docker.answers():
        progress(ProgressEvent("engine", "docker", "exists"))
        return
    if shutil.which("dockerd") is None:
        progress(ProgressEvent("engine", "docker", "waiting", "apt-get install docker.io"))
        apt_install("docker.io")
    _start_dockerd(progress)
    deadline = time.monotonic() + ENGINE_START_TIMEOUT_S
    while not docker.answers():
        if time.monotonic() > deadline:
            raise LocalError(
                f"dockerd did not answer within {ENGINE_START_TIMEOUT_S:.0f}s",
                hint=f"read {DOCKERD_LOG}",
            )
        time.sleep(0.5)
    progress(ProgressEvent("engine", "docker", "created", "dockerd started"))


def apt_install(*packages: str) -> None:
    _need_root(f"installing {', '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    result = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        # A fresh machine's package lists may be stale or missing: refresh once.
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
        result = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise LocalError(
            f"apt-get install {' '.join(packages)} failed: {_last_line(result.stderr)}",
            hint="run `apt-get update` and retry",
        )


def _start_dockerd(progress: Progress) -> None:
    _need_root("starting dockerd")
    if Path("/run/systemd/system").is_dir():  # systemd is PID 1: let it own the daemon
        subprocess.run(["systemctl", "start", "docker"], check=False, capture_output=True)
        return
    progress(ProgressEvent("engine", "dockerd", "waiting", f"log in {DOCKERD_LOG}"))
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with DOCKERD_LOG.open("ab") as log:
        # A new session: the daemon must outlive this command and its terminal.
        subprocess.Popen(
            ["dockerd", "--pidfile", str(DOCKERD_PIDFILE)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise LocalError(
            f"{what} needs root",
            hint="run as root, or install and start Docker yourself (docker.io, debootstrap)",
        )
