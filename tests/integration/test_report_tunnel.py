"""`gpucost report --deployment`: through a real sshd's port forward to the real
MongoDB-wire server, with the deployment's stored inventory, key and password.

The sshd on loopback plays vm2: the report logs in with the managed key, forwards a
local port to "vm2's private address" (loopback here) and reads the collections.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.uri_parser import parse_uri

import gpucost.remote.flows
import gpucost.remote.role_steps
from gpucost.config.settings import GpucostConfig, load_config
from gpucost.remote.hostkeys import HostKeyStore
from gpucost.report.source import read_report
from gpucost.report.tunnel import deployment_uri
from gpucost.state import StateDir
from support.report_docs import window
from support.sshd import Sshd, host_for

pytestmark = pytest.mark.integration


@pytest.fixture
def deployment(
    sshd: Sshd, tmp_path: Path, mongo_namespace: Any, monkeypatch: pytest.MonkeyPatch
) -> GpucostConfig:
    """State as `up` leaves it: inventory with vm2 = the sshd, the generated passwords."""
    parsed = parse_uri(mongo_namespace.uri)
    host, port = parsed["nodelist"][0]
    if parsed["username"] != gpucost.remote.role_steps.APP_USER or host not in (
        "127.0.0.1",
        "localhost",
    ):
        pytest.skip("the test database is not the local `gpucost` user's")
    # The deploy's MongoDB always listens on 27017; the test server may not.
    monkeypatch.setattr(gpucost.remote.flows, "MONGO_PORT", port)
    config = load_config(
        None,
        use_file=False,
        deployment="tunnel",
        state_root=tmp_path / ".gpucost",
        ssh_public_key=sshd.client_key.with_suffix(".pub"),
    )
    state = StateDir.of(config)
    vm2 = host_for(sshd, "vm2").model_copy(update={"role": "mongodb"})
    state.write_json(
        "inventory.json",
        {"deployment": "tunnel", "provider": "test", "hosts": [vm2.model_dump(mode="json")]},
    )
    state.write_json(
        "secrets.json",
        {"mongo_admin_password": "unused", "mongo_app_password": parsed["password"]},
    )
    now = time.time()
    with MongoClient(mongo_namespace.uri, serverSelectionTimeoutMS=5000) as client:
        client[mongo_namespace.database][mongo_namespace.collection("gpu_metrics")].insert_many(
            [window("0", (now // 10) * 10 - 10 * k) for k in range(1, 4)]
        )
    return config


def test_report_through_the_tunnel(deployment: GpucostConfig, mongo_namespace: Any) -> None:
    with deployment_uri(deployment) as uri:
        assert parse_uri(uri)["nodelist"][0][0] == "127.0.0.1"
        assert f":{gpucost.remote.flows.MONGO_PORT}/" not in uri  # a tunnel's own port
        report = read_report(uri, since_s=3600, now=time.time(), prefix=mongo_namespace.prefix)
    assert len(report.windows) == 3
    assert report.total.cost_usd == pytest.approx(0.03)
    # The host key was pinned on first use, as `gpucost ssh` would.
    state = StateDir.of(deployment)
    assert HostKeyStore(state).get("vm2") is not None


def test_cli_report_deployment_without_mongodb_uri(
    deployment: GpucostConfig, mongo_namespace: Any, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    env.update(
        GPUCOST_SSH_PUBLIC_KEY=str(deployment.ssh_public_key),
        GPUCOST_STATE_ROOT=str(deployment.state_root),
        MONGODB_COLLECTION_PREFIX=mongo_namespace.prefix,
    )
    port = str(gpucost.remote.flows.MONGO_PORT)
    code = (
        "import sys, gpucost.remote.flows as p; p.MONGO_PORT = int(sys.argv[1]); "
        "sys.argv = ['gpucost', *sys.argv[2:]]; from gpucost.cli.app import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, port, "report", "--deployment", "tunnel", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["windows"] == 3
