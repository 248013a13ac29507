"""The seam between a report and the database: a URI, direct or through a tunnel."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from gpucost.config.settings import load_config
from gpucost.errors import GpucostError
from gpucost.inventory import Host, Inventory
from gpucost.report.source import (
    MongoCredentials,
    model_window_match,
    model_window_pipeline,
    tunnelled,
    tunnelled_uri,
)
from gpucost.report.tunnel import stored_credentials
from gpucost.state import StateDir, StateError

pytestmark = pytest.mark.unit


class FakeForward:
    def __init__(self) -> None:
        self.closed = False

    @property
    def port(self) -> int:
        return 40123

    def close(self) -> None:
        self.closed = True


class FakeConnection:
    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []
        self.forward = FakeForward()

    def forward_local_port(self, remote_host: str, remote_port: int) -> FakeForward:
        self.asked.append((remote_host, remote_port))
        return self.forward


def test_tunnelled_uri_quotes_the_password_and_stays_on_the_tunnel() -> None:
    creds = MongoCredentials("gpucost", "p@ss:/w?rd", database="gpucost")
    uri = tunnelled_uri(creds, 40123)
    assert uri.startswith("mongodb://gpucost:")
    assert "@127.0.0.1:40123/gpucost?" in uri
    assert unquote(uri.split(":")[2].split("@127")[0]) == "p@ss:/w?rd"
    assert "directConnection=true" in uri
    assert "authSource=gpucost" in uri


def test_tunnel_forwards_to_mongodb_as_seen_from_vm2_and_closes() -> None:
    connection = FakeConnection()
    creds = MongoCredentials("gpucost", "pw", host="10.0.0.12", port=27017)
    with tunnelled(connection, creds) as uri:
        assert connection.asked == [("10.0.0.12", 27017)]
        assert "127.0.0.1:40123" in uri
        assert not connection.forward.closed
    assert connection.forward.closed


def test_tunnel_closes_when_the_report_fails() -> None:
    connection = FakeConnection()
    with pytest.raises(RuntimeError), tunnelled(connection, MongoCredentials("u", "p")):
        raise RuntimeError("boom")
    assert connection.forward.closed


def test_model_pipeline_groups_in_the_server_by_model_gpu_and_window() -> None:
    match, group = model_window_pipeline(100.0)
    assert match == {"$match": {"window_start": {"$gte": 100.0}}}
    assert group["$group"]["_id"] == {
        "model": "$model",
        "node": "$node",
        "gpu": "$gpu",
        "window_start": "$window_start",
    }


def test_model_match_uses_the_window_index_when_gpus_are_known() -> None:
    assert model_window_match(1_700_000_000.0, [("a", "0"), ("b", "1")]) == {
        "node": {"$in": ["a", "b"]},
        "gpu": {"$in": ["0", "1"]},
        "window_start": {"$gte": 1_700_000_000.0},
    }
    assert model_window_match(1_700_000_000.0) == {"window_start": {"$gte": 1_700_000_000.0}}


def test_deployment_state_without_inventory_or_secrets(tmp_path: Path) -> None:
    state = StateDir(tmp_path, "demo")
    state.ensure()
    with pytest.raises(StateError, match=r"no inventory\.json"):
        state.read_inventory()
    with pytest.raises(GpucostError, match="no generated passwords"):
        stored_credentials(state, "gpucost", "10.0.0.12")
    state.write_json("inventory.json", {"nonsense": True})
    with pytest.raises(StateError, match="not an inventory"):
        state.read_inventory()


def test_deployment_state_read_back(tmp_path: Path) -> None:
    config = load_config(None, use_file=False, state_root=tmp_path, deployment="demo")
    state = StateDir.of(config)
    host = Host(
        name="vm2", role="mongodb", provider="local", state="running", private_ip="10.0.0.12"
    )
    state.write_inventory(Inventory(deployment="demo", provider="local", hosts=(host,)))
    state.write_json("secrets.json", {"mongo_app_password": "s3cret", "mongo_admin_password": "x"})
    assert state.read_inventory().by_role("mongodb").private_ip == "10.0.0.12"
    creds = stored_credentials(state, config.mongodb.database, "10.0.0.12")
    assert creds == MongoCredentials("gpucost", "s3cret", "gpucost", "10.0.0.12", 27017)


def test_tenant_pipeline_groups_by_tenant() -> None:
    _match, group = model_window_pipeline(100.0, key="tenant")
    assert group["$group"]["_id"]["model"] == "$tenant"
