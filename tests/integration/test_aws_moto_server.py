"""The real CLI, in its own process, against a moto server reached through
AWS_ENDPOINT_URL: up, up again, status, dry run, down, and nothing left."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from gpucost.remote.providers.aws_tags import leftovers
from support.aws_moto import ADMIN, REGION, new_session

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    # The server thread builds its backends from this process's environment.
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        os.environ.pop("MOTO_EC2_LOAD_DEFAULT_AMIS", None)


@pytest.fixture
def aws_env(endpoint: str, tmp_path: Path) -> dict[str, str]:
    """Only fake credentials and the local endpoint; nothing of this machine's AWS setup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GPUCOST_"))}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        COLUMNS="200",
    )
    return env


@pytest.fixture
def ec2(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, aws_env[key])
    return new_session(REGION).client("ec2")


@pytest.fixture
def public_key(tmp_path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")], check=True
    )
    return tmp_path / "key.pub"


@pytest.fixture
def gpucost(
    aws_env: dict[str, str], tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gpucost", *args],
            cwd=tmp_path,
            env=aws_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


def test_up_twice_status_down_leaves_nothing(
    gpucost: Callable[..., subprocess.CompletedProcess[str]],
    ec2: Any,
    public_key: Path,
    tmp_path: Path,
) -> None:
    image = ec2.register_image(
        Name="ubuntu-24.04", RootDeviceName="/dev/sda1", VirtualizationType="hvm"
    )["ImageId"]
    up = [
        "up",
        "--provider",
        "aws",
        "--infra-only",
        "--yes",
        "--region",
        REGION,
        "--admin-cidr",
        ADMIN,
        "--ssh-public-key",
        str(public_key),
        "--image-id",
        image,
    ]

    first = gpucost(*up)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(" created instance ") == 4
    assert first.stderr.count(" created security group ") == 4

    second = gpucost(*up)
    assert second.returncode == 0, second.stderr
    # Nothing was created or changed the second time: every resource "exists".
    assert " created " not in second.stderr
    assert " updated " not in second.stderr
    assert " deleted " not in second.stderr
    assert second.stderr.count(" exists instance ") == 4

    dry = gpucost(*up[:-2], "--dry-run")  # no image needed when all VMs exist
    assert dry.returncode == 0, dry.stderr
    assert "create" not in dry.stdout

    status = gpucost("status", "--provider", "aws", "--json")
    assert status.returncode == 0, status.stderr
    hosts = json.loads(status.stdout)
    assert [(h["name"], h["role"], h["state"]) for h in hosts] == [
        ("vm1", "kafka-zk", "running"),
        ("vm2", "mongodb", "running"),
        ("vm3", "processor", "running"),
        ("vm4", "producers", "running"),
    ]
    assert all(h["public_ip"] and h["private_ip"] for h in hosts)
    instance = ec2.describe_instances(InstanceIds=[hosts[0]["instance_id"]])["Reservations"][0][
        "Instances"
    ][0]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"

    assert len(leftovers(ec2, "main")) > 0
    down = gpucost("down", "--provider", "aws", "--yes")
    assert down.returncode == 0, down.stderr
    assert down.stdout.count("instance") == 4
    assert leftovers(ec2, "main") == []
    assert not (tmp_path / ".gpucost" / "main").exists()


def test_missing_credentials_is_one_line(
    gpucost: Callable[..., subprocess.CompletedProcess[str]],
    aws_env: dict[str, str],
    public_key: Path,
) -> None:
    del aws_env["AWS_ACCESS_KEY_ID"]
    del aws_env["AWS_SECRET_ACCESS_KEY"]
    out = gpucost(
        "up",
        "--provider",
        "aws",
        "--infra-only",
        "--yes",
        "--region",
        REGION,
        "--admin-cidr",
        ADMIN,
        "--ssh-public-key",
        str(public_key),
        "--image-id",
        "ami-12345678",
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "error: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or run `aws configure`)"
    ]
