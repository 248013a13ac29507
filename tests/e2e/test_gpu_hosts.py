"""Two GPU hosts in a local deployment, through the installed CLI:

    gpucost up --infra-only            -> the four VMs and their network
    (a fifth host appears: a GPU host "the user already has", listed in [[gpu_hosts]])
    gpucost up                         -> the pipeline, gpucost-agent on vm4 and on it
    gpucost verify --json              -> every check, samples from both hosts included
    gpucost ssh gpu-9 / logs gpu-9     -> the GPU host by its name, its agent's log
    processor stopped for 35 s, started again
    gpucost report --by gpu --json     -> vm4/0 and gpu-9/0, each on its own row
    gpucost down                       -> the fifth host goes too

Each GPU's windows, read back through the deployment's SSH tunnel, must tile the time
its samples cover with no gap and no repeat, across the processor's downtime, each at
the full price of its width: busy or idle, each GPU is paid for all its time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any, Final

import pytest
from pymongo import MongoClient

from gpucost.config.settings import load_config
from gpucost.report.tunnel import deployment_uri
from support.flow import Flow, new_flow
from support.gpu_host import make_gpu_host
from support.tools import require_tool

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local provider needs root"),
]

SUBNET: Final = "172.29.202.0/24"
BUDGET_S: Final = 20 * 60
GPU_HOST: Final = "gpu-9"
DOWN_S: Final = 35.0


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    require_tool("ssh", "apt-get install -y openssh-client")
    state = new_flow(tmp_path_factory.mktemp("gpu-hosts"), "e2e-gpu", SUBNET, BUDGET_S)
    try:
        yield state
    finally:
        state.run("down (teardown)", "down", "--yes", limit=180, check=False)
        print(f"timings (s): {json.dumps(state.timings)}")


def gpu_windows(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    monkeypatch.chdir(flow.cwd)  # the deployment's state is in the flow's directory
    config = load_config(flow.cwd / "gpucost.toml")
    with deployment_uri(config) as uri:
        client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=10_000)
        try:
            docs = list(client[config.mongodb.database].gpu_metrics.find({}, {"_id": 0}))
        finally:
            client.close()
    by_node: dict[str, list[dict[str, Any]]] = {}
    for doc in sorted(docs, key=lambda d: d["window_start"]):
        by_node.setdefault(f"{doc['node']}/{doc['gpu']}", []).append(doc)
    return by_node


def test_two_gpu_hosts_are_each_charged_in_full_across_a_processor_restart(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow.run("up infra", "up", "--provider", "local", "--infra-only", "--yes", limit=10 * 60)
    public_key = (flow.cwd / "key" / "id_ed25519.pub").read_text().strip()
    host = make_gpu_host(flow.deployment, SUBNET, public_key)
    with (flow.cwd / "gpucost.toml").open("a") as settings:
        settings.write(
            "\n[[gpu_hosts]]\n"
            f'name = "{GPU_HOST}"\n'
            f'address = "{host.address}"\n'
            'ssh_user = "ubuntu"\n'
            f'host_key = "{host.host_key}"\n'
            'gpu_source = "seed"\n'
        )

    up = flow.run("up", "up", "--yes", limit=15 * 60)
    assert f"step {GPU_HOST}" in up.stderr, up.stderr[-3000:]

    verified = flow.run("verify", "verify", "--json", limit=300, check=False)
    checks: list[dict[str, Any]] = json.loads(verified.stdout)
    assert [c for c in checks if not c["ok"]] == [], verified.stdout
    names = {c["name"] for c in checks}
    assert {"GPU samples from vm4", f"GPU samples from {GPU_HOST}"} <= names

    status = json.loads(flow.run("status", "status", "--json", limit=120).stdout)
    assert [(r["name"], r["role"]) for r in status][-1] == (GPU_HOST, "gpu")
    # The GPU host by its name, with its pinned key: a shell, and its agent's log.
    hostname = flow.run("ssh gpu", "ssh", GPU_HOST, "--", "hostname", limit=60)
    assert hostname.stdout.strip() == "vm9"  # the container's own hostname
    agent_log = flow.run("logs gpu", "logs", GPU_HOST, limit=60)
    assert '"msg": "agent started"' in agent_log.stdout + agent_log.stderr

    flow.run("stop", "ssh", "vm3", "--", "sudo", "docker", "stop", "gpucost-processor", limit=90)
    stopped = time.time()
    time.sleep(DOWN_S)
    flow.run("start", "ssh", "vm3", "--", "sudo", "docker", "start", "gpucost-processor", limit=90)
    started = time.time()
    time.sleep(40)  # the gap's samples wait in Kafka; the restarted processor catches up

    report = json.loads(
        flow.run("report", "report", "--by", "gpu", "--since", "30m", "--json", limit=120).stdout
    )
    keys = {row["key"] for row in report["rows"]}
    assert {"vm4/0", f"{GPU_HOST}/0"} <= keys, keys

    windows = gpu_windows(flow, monkeypatch)
    assert set(windows) == {"vm4/0", f"{GPU_HOST}/0"}
    for gpu, rows in windows.items():
        width = rows[0]["window_s"]
        price = rows[0]["price_per_hour_usd"]
        starts = [round(w["window_start"] * 1000) for w in rows]
        step = round(width * 1000)
        assert starts == list(range(starts[0], starts[-1] + step, step)), f"{gpu}: a gap"
        for window in rows:
            assert window["cost_usd"] == pytest.approx(price * width / 3600, rel=1e-12)
        # Windows wholly inside the processor's downtime, written after it from the
        # samples the agents kept publishing, from their own samples.
        gap = [w for w in rows if stopped + 1 <= w["window_start"] <= started - width - 1]
        assert gap, f"{gpu}: no window of the downtime"
        assert all(w["sample_count"] > 0 for w in gap), gap
        assert all(len(w["written_by"]) == 1 for w in rows)
