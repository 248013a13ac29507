"""The README's flow for real, through the installed CLI, on the local provider:

    gpucost up --provider local --yes   -> four hosts, the pipeline deployed over SSH
    gpucost verify --json               -> every check passes
    gpucost up --yes                    -> a second `up` changes nothing
    gpucost ssh vm3 -- hostname         -> vm3
    gpucost produce --rate 50 --duration 10
    gpucost logs vm3                    -> the processor's log lines
    gpucost status --json               -> four running hosts, each with its services' health
    gpucost down --yes                  -> nothing labelled with the deployment is left

Each command runs as a subprocess in a temporary working directory (the CLI
keeps its state in `.gpucost/<deployment>/` there), with a key made by the
test and a deployment name of its own; `~/.ssh` is not used. `down` runs in
the fixture's teardown whatever happened. The provider installs and starts
Docker if it is missing, and builds its two images if they are not cached.

Needs root, Debian's package mirror, PyPI (or a pip cache) and Maven Central
(or ~/.m2). Measured here (2 cores): 3.9 min with the images cached; 7.4 min
when they are built first. Only the containers this test creates and loopback
are contacted. The wheel is built from the working tree: editing the sources
while the test runs makes the second `up` rebuild the images, and fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, Final

import pytest

from gpucost.inventory import VM_NAMES
from gpucost.remote.health import API_HEALTH, HEALTHY
from support.flow import Flow, new_flow
from support.tools import require_tool

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local provider needs root"),
]


@pytest.fixture(scope="module", autouse=True)
def _ssh_client() -> None:
    # Module scope: checked before the flow's own module fixtures start anything.
    require_tool("ssh", "apt-get install -y openssh-client")


BUDGET_S: Final = 18 * 60
"""The whole flow, teardown included, on a fresh machine that builds the images."""
SUBNET: Final = "172.29.201.0/24"


def _docker(*args: str) -> list[str]:
    out = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return out.split()


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    state = new_flow(tmp_path_factory.mktemp("flow"), "e2e", SUBNET, BUDGET_S)
    try:
        yield state
    finally:
        state.run("down (teardown)", "down", "--yes", limit=180, check=False)
        print(f"timings (s): {json.dumps(state.timings)}", file=sys.stderr)


def _changes(stderr: str) -> list[str]:
    """The progress lines of `up` that report a change (created, updated, deleted)."""
    verbs = ("created", "updated", "deleted")
    return [line for line in stderr.splitlines() if line.split()[:1] and line.split()[0] in verbs]


def test_the_readme_flow(flow: Flow) -> None:
    label = f"label=gpucost.deployment={flow.deployment}"

    up = flow.run("up", "up", "--provider", "local", "--yes", limit=15 * 60)
    assert "step vm3" in up.stderr, up.stderr[-3000:]
    assert "SecantusDB" in up.stderr, "the output says which database server runs"

    verified = flow.run("verify", "verify", "--json", limit=300, check=False)
    checks: list[dict[str, Any]] = json.loads(verified.stdout)
    failed = [c for c in checks if not c["ok"]]
    assert failed == [], json.dumps(failed, indent=2)
    assert verified.returncode == 0
    names = {c["name"] for c in checks}
    for expected in ("events arrive exactly once", "events have costs", "gpu_metrics fresh"):
        assert expected in names

    again = flow.run("up again", "up", "--yes", "--json", limit=180)
    assert _changes(again.stderr) == [], again.stderr
    steps = [line for line in again.stderr.splitlines() if " step vm" in line]
    assert steps, again.stderr
    assert all(line.split()[0] == "exists" for line in steps), again.stderr
    inventory = json.loads(again.stdout)
    assert [h["name"] for h in inventory] == list(VM_NAMES)

    hostname = flow.run("ssh", "ssh", "vm3", "--", "hostname", limit=60)
    assert hostname.stdout.strip() == "vm3"

    produced = flow.run("produce", "produce", "--rate", "50", "--duration", "10", limit=180)
    assert "sent" in produced.stdout, produced.stdout
    assert "failed 0" in produced.stdout, produced.stdout

    logs = flow.run("logs", "logs", "vm3", limit=60)
    lines = [json.loads(x) for x in (logs.stdout + logs.stderr).splitlines() if x.startswith("{")]
    assert any(str(x.get("logger", "")).startswith("gpucost.processor") for x in lines), (
        logs.stdout[-2000:] + logs.stderr[-2000:]
    )

    status = flow.run("status", "status", "--json", limit=120)
    rows = json.loads(status.stdout)
    assert [(r["name"], r["state"]) for r in rows] == [(vm, "running") for vm in VM_NAMES]
    assert rows[2]["services"][API_HEALTH] == "healthy", rows[2]
    for row in rows:
        assert {"name", "role", "state", "public_ip", "private_ip"} <= set(row)
        assert row["services"], f"{row['name']} reports its services' health"
        unhealthy = {s: h for s, h in row["services"].items() if h not in HEALTHY}
        assert unhealthy == {}, f"{row['name']}: {unhealthy}"

    down = flow.run("down", "down", "--yes", "--json", limit=180)
    assert {r["kind"] for r in json.loads(down.stdout)} >= {"host", "network", "volume"}
    assert _docker("ps", "-a", "-q", "--filter", label) == []
    assert _docker("volume", "ls", "-q", "--filter", label) == []
    assert _docker("network", "ls", "-q", "--filter", label) == []
