"""Issue 11, point 4: an admin whose IP changed is never locked out.

The API side on moto (tags, IMDS options, user data, the reboot when SSH cannot
be reached) and the boot unit's script under bash with stand-ins for `curl`
(IMDS) and `ufw`. Fails on the code before: no tag, no user data, no reboot;
ufw kept admitting only the old address.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gpucost.config.settings import GpucostConfig
from gpucost.remote.cloud_config import ADMIN_ACCESS_UNIT as UNIT
from gpucost.remote.cloud_config import user_data
from gpucost.remote.providers.aws import AwsProvider
from gpucost.remote.providers.aws_access import TAG_ADMIN_CIDR
from gpucost.remote.steps import SCRIPTS_DIR
from gpucost.state import StateDir
from support.aws_moto import ADMIN, Calls

pytestmark = pytest.mark.unit

NEW = "198.51.100.9/32"


def _tags(ec2: Any) -> list[dict[str, str]]:
    reservations = ec2.describe_instances(
        Filters=[{"Name": "tag:gpucost:deployment", "Values": ["test"]}]
    )["Reservations"]
    return [{t["Key"]: t["Value"] for t in i["Tags"]} for r in reservations for i in r["Instances"]]


def test_launch_carries_the_tag_the_imds_option_and_the_unit(
    provider: AwsProvider, config: GpucostConfig, calls: Calls, ec2: Any
) -> None:
    provider.converge(config)
    for request in calls.of("RunInstances"):
        assert request["MetadataOptions"]["InstanceMetadataTags"] == "enabled"
        assert request["MetadataOptions"]["HttpTokens"] == "required"
        data = request["UserData"]
        if not data.startswith("#"):  # boto3 base64-encodes it on the way
            data = base64.b64decode(data).decode()
        assert data.startswith("#cloud-config\n")
        assert f"systemctl, enable, {UNIT}" in data
        assert "gpucost:admin-cidr" in data
        assert "PRIVATE KEY" not in data  # user data is readable by anything on the VM
    instance = ec2.describe_instances()["Reservations"][0]["Instances"][0]
    user_data = ec2.describe_instance_attribute(
        InstanceId=instance["InstanceId"], Attribute="userData"
    )["UserData"]["Value"]
    assert base64.b64decode(user_data).decode().startswith("#cloud-config")
    assert {t[TAG_ADMIN_CIDR] for t in _tags(ec2)} == {ADMIN}


def _move(provider: AwsProvider, make_config: Any) -> tuple[GpucostConfig, Any]:
    provider.converge(make_config())
    moved = make_config(admin_cidr=NEW)
    return moved, provider.converge(moved)


def test_a_new_admin_ip_moves_the_tags_and_reboots_what_it_cannot_reach(
    provider: AwsProvider, make_config: Any, calls: Calls, ec2: Any, reachable: dict[str, bool]
) -> None:
    moved, inventory = _move(provider, make_config)
    assert {t[TAG_ADMIN_CIDR] for t in _tags(ec2)} == {NEW}
    # ufw on vm1 and vm2 still admits only the old address; vm3, vm4 answer.
    locked = [h for h in inventory.hosts if h.name in ("vm1", "vm2")]
    for host in locked:
        reachable[str(host.public_ip)] = False
    calls.clear()
    provider.ready(moved, inventory)
    (reboot,) = calls.of("RebootInstances")
    assert sorted(reboot["InstanceIds"]) == sorted(str(h.instance_id) for h in locked)
    # Done once: the next `up` neither reboots nor retags.
    calls.clear()
    provider.ready(moved, provider.converge(moved))
    assert calls.mutating == []


def test_a_reachable_host_is_not_rebooted(
    provider: AwsProvider, make_config: Any, calls: Calls
) -> None:
    moved, inventory = _move(provider, make_config)
    calls.clear()
    provider.ready(moved, inventory)
    assert calls.of("RebootInstances") == []


def test_the_reboot_survives_an_interrupted_up(
    provider: AwsProvider, make_config: Any, calls: Calls, reachable: dict[str, bool]
) -> None:
    moved, inventory = _move(provider, make_config)
    # `up` stopped after moving the tags: the state still names the instances.
    state = StateDir(moved.state_root, moved.deployment).read_json("aws.json")
    assert len(state["admin_moved"]) == 4
    for host in inventory.hosts:
        reachable[str(host.public_ip)] = False
    calls.clear()
    provider.ready(moved, provider.converge(moved))
    assert len(calls.of("RebootInstances")[0]["InstanceIds"]) == 4


# --- the boot unit's script ---------------------------------------------------

RULES = (
    "allow proto tcp from 203.0.113.7/32 to any port 22\n"
    "allow proto tcp from 10.0.0.13 to any port 9092\n"
    "allow proto tcp from 203.0.113.7/32 to any port 8080\n"
)


def run_unit(tmp_path: Path, tag: str | None, rules: str | None = RULES) -> Any:
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    answer = "exit 22" if tag is None else f"printf %s {tag!r}"
    (stubs / "curl").write_text(
        "#!/bin/bash\n"
        'case "$*" in *api/token*) echo TOKEN ;; '
        f'*tags/instance/gpucost:admin-cidr*) [[ "$*" == *TOKEN* ]] || exit 22; {answer} ;; '
        "*) exit 22 ;; esac\n"
    )
    (stubs / "ufw").write_text(f'#!/bin/bash\necho "$*" >> {tmp_path}/ufw\n')
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    record = tmp_path / "ufw.rules"
    if rules is not None:
        record.write_text(rules)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}",
           "GPUCOST_UFW_RULES": str(record)}  # fmt: skip
    script = SCRIPTS_DIR / "admin-access.sh"
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)


def test_the_unit_moves_the_admin_rules_and_only_those(tmp_path: Path) -> None:
    out = run_unit(tmp_path, NEW)
    assert out.returncode == 0, out.stderr
    applied = (tmp_path / "ufw").read_text().splitlines()
    assert applied == [
        "--force reset",
        "default deny incoming",
        "default allow outgoing",
        f"allow proto tcp from {NEW} to any port 22",
        "allow proto tcp from 10.0.0.13 to any port 9092",
        f"allow proto tcp from {NEW} to any port 8080",
        "--force enable",
    ]
    assert (tmp_path / "ufw.rules").read_text() == RULES.replace("203.0.113.7/32", NEW)
    # Run again at the next boot: nothing to do.
    (tmp_path / "ufw").unlink()
    assert run_unit(tmp_path, NEW, rules=None).returncode == 0
    assert not (tmp_path / "ufw").exists()


@pytest.mark.parametrize(
    ("tag", "rules", "rc"),
    [(ADMIN, RULES, 0), (None, RULES, 0), ("0.0.0.0/0; rm -rf /", RULES, 1), (NEW, None, 0)],
    ids=["same-address", "no-tag", "not-a-cidr", "not-hardened-yet"],
)
def test_the_unit_changes_nothing_otherwise(
    tmp_path: Path, tag: str | None, rules: str | None, rc: int
) -> None:
    out = run_unit(tmp_path, tag, rules)
    assert out.returncode == rc, out.stderr
    assert not (tmp_path / "ufw").exists()


def test_the_user_data_is_valid_cloud_config() -> None:
    # An indentation slip would only show on a real boot: parse it as cloud-init does.
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(user_data())
    files = {f["path"]: f for f in config["write_files"]}
    script = files["/usr/local/sbin/gpucost-admin-access"]
    assert script["content"] == (SCRIPTS_DIR / "admin-access.sh").read_text()
    assert script["permissions"] == "0755"
    unit = files[f"/etc/systemd/system/{UNIT}"]["content"]
    assert "ExecStart=/usr/local/sbin/gpucost-admin-access" in unit
    assert ["systemctl", "enable", UNIT] in config["runcmd"]
    (reprint,) = config["bootcmd"]
    assert reprint[:2] == ["sh", "-c"]
    assert "write-ssh-key-fingerprints" in reprint[2]
