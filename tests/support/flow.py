"""The gpucost CLI run as a subprocess in one working directory, for the e2e flows."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

GPUCOST: Final = Path(sys.executable).with_name("gpucost")


@dataclass
class Flow:
    """The CLI in one working directory, each call bounded by the flow's budget."""

    cwd: Path
    deployment: str
    deadline: float
    budget_s: float
    timings: dict[str, float] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    """Added to this process's environment for each call (AWS_ENDPOINT_URL, ...)."""

    def run(
        self, name: str, *args: str, limit: float, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        # Teardown gets its own time even when the steps used the budget up.
        left = self.deadline - time.monotonic()
        timeout = max(30.0, min(limit, left)) if name.startswith("down") else min(limit, left)
        if timeout <= 0:
            pytest.fail(f"the flow ran out of its {self.budget_s} s before `gpucost {name}`")
        env = {**os.environ, **self.env, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
        env.pop("GPUCOST_CONFIG", None)
        started = time.monotonic()
        try:
            done = subprocess.run(
                [str(GPUCOST), *args],
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"`gpucost {' '.join(args)}` ran over {timeout:.0f} s:\n{_tail(exc)}")
        self.timings[name] = round(time.monotonic() - started, 1)
        print(f"gpucost {' '.join(args)}: {self.timings[name]} s", file=sys.stderr)
        if check and done.returncode != 0:
            pytest.fail(
                f"`gpucost {' '.join(args)}` exited {done.returncode}\n"
                f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
            )
        return done


def _tail(exc: subprocess.TimeoutExpired) -> str:
    parts = []
    for stream in (exc.stdout, exc.stderr):
        if stream:
            text = stream.decode(errors="replace") if isinstance(stream, bytes) else stream
            parts.append(text[-3000:])
    return "\n".join(parts)


def new_flow(work: Path, prefix: str, subnet: str, budget_s: float) -> Flow:
    """A working directory with its own SSH key and a `gpucost.toml` for a local
    deployment of its own (`<prefix>-<random>`) on `subnet`."""
    key = work / "key" / "id_ed25519"
    key.parent.mkdir(mode=0o700)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gpucost-e2e", "-f", str(key)],
        check=True,
        timeout=30,
    )
    deployment = f"{prefix}-{secrets.token_hex(3)}"
    (work / "gpucost.toml").write_text(
        f'deployment = "{deployment}"\n'
        'provider = "local"\n'
        f'local_subnet = "{subnet}"\n'
        f'ssh_public_key = "{key}.pub"\n'
    )
    return Flow(work, deployment, time.monotonic() + budget_s, budget_s)
