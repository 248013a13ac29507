"""`gpucost status`'s service health: what it asks each VM, and how it reads the answer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gpucost.config.settings import load_config
from gpucost.remote.health import API_HEALTH, deployed, parse, probe_command, services_of

pytestmark = pytest.mark.unit


def test_each_role_names_its_services() -> None:
    config = load_config(use_file=False, provider="local")
    assert services_of(config, "kafka-zk") == (("ssh", "zookeeper", "kafka"), ())
    assert services_of(config, "mongodb") == (("ssh", "secantusdb"), ())
    assert services_of(config, "processor") == (("ssh", "docker"), ("gpucost-processor",))
    assert services_of(config, "producers")[1] == ("gpucost-producer-1",)
    real = load_config(use_file=False, provider="aws", mongodb={"server": "mongodb"})
    assert services_of(real, "mongodb") == (("ssh", "mongod"), ())


def test_the_probe_prints_one_line_per_service_and_never_fails(tmp_path: Path) -> None:
    # No systemd and no docker here: each service is still named, and the shell exits 0.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("systemctl", "docker"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 3\n")
        (bin_dir / tool).chmod(0o755)
    (bin_dir / "curl").write_text("#!/bin/sh\nexit 7\n")
    (bin_dir / "curl").chmod(0o755)
    command = probe_command(("ssh", "kafka"), ("gpucost-processor",), api=True)
    done = subprocess.run(
        ["sh", "-c", command],
        capture_output=True,
        text=True,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        check=True,
    )
    health = parse(done.stdout, ("ssh", "kafka", "gpucost-processor", API_HEALTH))
    assert health == {
        "ssh": "unknown",
        "kafka": "unknown",
        "gpucost-processor": "absent",
        API_HEALTH: "failing",
    }


def test_parse_keeps_the_expected_services_in_order() -> None:
    out = "kafka active\nssh active\nnoise here\ngpucost-processor healthy\napi /health healthy\n"
    assert parse(out, ("ssh", "kafka", "gpucost-processor", "zookeeper", API_HEALTH)) == {
        "ssh": "active",
        "kafka": "active",
        "gpucost-processor": "healthy",
        "zookeeper": "unknown",
        API_HEALTH: "healthy",
    }


def test_hosts_made_by_infra_only_are_not_contacted(tmp_path: Path) -> None:
    config = load_config(use_file=False, provider="local", state_root=tmp_path)
    (tmp_path / config.deployment).mkdir()
    (tmp_path / config.deployment / "inventory.json").write_text("{}")
    assert not deployed(config)
    (tmp_path / config.deployment / "secrets.json").write_text("{}")
    assert deployed(config)
