"""`gpucost up --provider aws` end to end, against moto's EC2 API whose four
instances are real hosts booted by cloud-init from the user data gpucost sent
(support/ec2_backing.py): the AWS provider's whole path runs, deploy included.

    gpucost up --provider aws --yes     -> key pair, groups, four instances; host keys
                                           from GetConsoleOutput; the deploy over SSH
                                           to the instances' public addresses
    gpucost verify --json               -> every check passes
    gpucost ssh vm3 -- cloud-init ...   -> the instance ran gpucost's user data
    EC2 StopInstances + StartInstances  -> vm3 has a new public address; the pinned key
                                           (bound to the instance id) still holds;
                                           `ssh` and `verify` pass
    the admin's address moves, then     -> groups and tags move; SSH is refused by ufw,
    gpucost up --admin-cidr NEW --yes      so `up` reboots the instances and their unit
                                           admits the new address; `verify` passes
    gpucost down --yes                  -> nothing of the deployment is left in EC2,
                                           and no host behind it

This machine is the admin, at 198.18.0.1 and then 198.18.0.2 on the hosts'
"internet" network. The deploy uploads Kafka's jars and the base image (no
Apache archive, no Docker Hub: an air-gapped install). Needs root, Debian's
mirror, PyPI (or a pip cache) and Maven Central (or ~/.m2), as the local flow.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, Final

import boto3
import pytest

from gpucost.remote import local_defaults
from gpucost.remote.health import HEALTHY
from gpucost.remote.providers.local_engine import Docker, ensure_engine
from gpucost.remote.providers.local_images import archive_path, ensure_images
from support.aws_moto import REGION
from support.ec2_backing import ADMIN_IP, BackedEc2
from support.flow import Flow, new_flow
from support.tools import require_tool

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the hosts need root"),
]

BUDGET_S: Final = 20 * 60
IMAGE_NAME: Final = "debian-12-amd64-20261101-1900"
"""The hosts are Debian 12: the AMI says so, and the support matrix reads it."""


@pytest.fixture(scope="module")
def cloud() -> Iterator[BackedEc2]:
    require_tool("ssh", "apt-get install -y openssh-client")
    docker = Docker()
    ensure_engine(docker)
    ensure_images(docker, local_defaults.cache_dir())
    with BackedEc2(REGION) as backed:
        yield backed
        assert backed.errors == [], backed.errors


@pytest.fixture(scope="module")
def ec2(cloud: BackedEc2) -> Any:
    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=cloud.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def flow(cloud: BackedEc2, ec2: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    state = new_flow(tmp_path_factory.mktemp("aws"), "e2eaws", "172.29.0.0/24", BUDGET_S)
    image_id = ec2.register_image(
        Name=IMAGE_NAME, RootDeviceName="/dev/sda1", VirtualizationType="hvm"
    )["ImageId"]
    (state.cwd / "gpucost.toml").write_text(
        f'deployment = "{state.deployment}"\n'
        'provider = "aws"\n'
        f'region = "{REGION}"\n'
        f'image_id = "{image_id}"\n'
        f'admin_cidr = "{ADMIN_IP}/32"\n'
        f'ssh_public_key = "{state.cwd}/key/id_ed25519.pub"\n'
        # Kafka's pinned jars are uploaded by default; the base image's archive is
        # uploaded too, so no VM pulls from a registry. MongoDB's repository cannot
        # be reached from these machines: SecantusDB stands in.
        '[mongodb]\nserver = "secantusdb"\n'
        f'[images]\nbase = "{local_defaults.PYTHON_IMAGE}"\n'
        f'python = "{local_defaults.PYTHON_VERSION}"\n'
        f'base_archive = "{archive_path(local_defaults.cache_dir())}"\n'
    )
    state.env = {
        "AWS_ENDPOINT_URL": cloud.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    try:
        yield state
    finally:
        state.run("down (teardown)", "down", "--yes", limit=300, check=False)
        print(f"timings (s): {json.dumps(state.timings)}", file=sys.stderr)


def _verify(flow: Flow, name: str, cloud: BackedEc2) -> None:
    verified = flow.run(name, "verify", "--json", limit=300, check=False)
    checks: list[dict[str, Any]] = json.loads(verified.stdout or "[]")
    failed = [c for c in checks if not c["ok"]]
    assert checks, verified.stderr[-2000:]
    assert failed == [], json.dumps(failed, indent=2) + cloud.describe()
    assert verified.returncode == 0


def _wait_healthy(flow: Flow, name: str, timeout: float = 180) -> None:
    """Until every host's services say healthy: a started VM needs its boot first."""
    deadline = time.monotonic() + timeout
    while True:
        status = flow.run(name, "status", "--json", limit=120, check=False)
        rows = json.loads(status.stdout or "[]")
        sick = {
            r["name"]: {s: h for s, h in (r.get("services") or {}).items() if h not in HEALTHY}
            for r in rows
        }
        if rows and not any(sick.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not healthy after {timeout:.0f} s: {sick}")
        time.sleep(5)


def _vm3(ec2: Any, deployment: str) -> dict[str, Any]:
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "tag:gpucost:deployment", "Values": [deployment]},
            {"Name": "tag:gpucost:vm", "Values": ["vm3"]},
            {"Name": "instance-state-name", "Values": ["running", "stopped"]},
        ]
    )["Reservations"]
    return dict(reservations[0]["Instances"][0])


def test_up_verify_stop_start_new_admin_and_down(flow: Flow, cloud: BackedEc2, ec2: Any) -> None:
    up = flow.run("up", "up", "--provider", "aws", "--yes", limit=15 * 60)
    assert "step vm3" in up.stderr, up.stderr[-3000:]
    _verify(flow, "verify", cloud)

    ran = flow.run("ssh", "ssh", "vm3", "--", "cloud-init", "status", limit=60)
    assert ran.stdout.strip() == "status: done"
    user = flow.run("whoami", "ssh", "vm3", "--", "whoami", limit=60)
    assert user.stdout.strip() == "ubuntu"

    # Stop and start through the EC2 API, as from the console: a new public address.
    before = _vm3(ec2, flow.deployment)
    ec2.stop_instances(InstanceIds=[before["InstanceId"]])
    cloud.settled()
    ec2.start_instances(InstanceIds=[before["InstanceId"]])
    cloud.settled()
    after = _vm3(ec2, flow.deployment)
    assert after["PublicIpAddress"] != before["PublicIpAddress"]
    again = flow.run("ssh after start", "ssh", "vm3", "--", "hostname", limit=120)
    assert again.stdout.strip() == f"ip-{after['PrivateIpAddress'].replace('.', '-')}"
    _wait_healthy(flow, "status after start")
    _verify(flow, "verify after start", cloud)

    # The admin's address changes: `up` with the new one must let them back in.
    with cloud.move_admin() as new_admin:
        moved = flow.run("up new admin", "up", "--admin-cidr", new_admin, "--yes", limit=10 * 60)
        assert "rebooted" in moved.stderr, moved.stderr[-3000:]
        _wait_healthy(flow, "status new admin")
        _verify(flow, "verify new admin", cloud)
        rules = flow.run("ufw", "ssh", "vm1", "--", "sudo", "ufw", "status", limit=60)
        assert new_admin.removesuffix("/32") in rules.stdout
        assert ADMIN_IP not in rules.stdout

        down = flow.run("down", "down", "--yes", "--json", limit=300)
    assert {r["kind"] for r in json.loads(down.stdout)} >= {"instance", "security group"}
    cloud.settled()
    live = ec2.describe_instances(
        Filters=[
            {"Name": "tag:gpucost:deployment", "Values": [flow.deployment]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]},
        ]
    )["Reservations"]
    assert live == []
    tagged = [{"Name": "tag:gpucost:deployment", "Values": [flow.deployment]}]
    assert ec2.describe_security_groups(Filters=tagged)["SecurityGroups"] == []
    assert ec2.describe_key_pairs(Filters=tagged)["KeyPairs"] == []
    assert ec2.describe_volumes(Filters=tagged)["Volumes"] == []
    assert cloud.hosts_left() == []
