"""The admin's way back in after their IP changed, with only what `up` set up.

Each instance carries its admin CIDR in the `gpucost:admin-cidr` tag, readable
from inside through IMDS (InstanceMetadataTags enabled at launch), and its user
data (`remote/cloud_config.py`) installs a boot-time unit
(`scripts/roles/admin-access.sh`) that rewrites the ufw rules to admit the
tag's address. `up` with a new admin IP moves the
security-group rules and the tags; when it then cannot reach SSH (ufw still
admits only the old address), it reboots the instances through the EC2 API and
the unit lets the new address in. The same tag and reboot work by hand
(`aws ec2 reboot-instances`), even without this machine's state.

The user data also reprints the host keys to the console at every boot, in
cloud-init's format, so the keys stay readable after a stop/start.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from gpucost.remote.providers.aws_tags import Client, tag_value
from gpucost.remote.providers.base import Progress, ProgressEvent

TAG_ADMIN_CIDR: Final = "gpucost:admin-cidr"


def admin_tag_moves(
    instances: Mapping[Any, Mapping[str, Any]], admin_cidr: str
) -> tuple[list[str], list[str]]:
    """(instances to tag, of which those whose tag named another address: the
    ones whose ufw may now lock the admin out)."""
    to_tag, moved = [], []
    for instance in instances.values():
        if instance["State"]["Name"] not in ("pending", "running", "stopping", "stopped"):
            continue
        current = tag_value(instance, TAG_ADMIN_CIDR)
        if current != admin_cidr:
            to_tag.append(str(instance["InstanceId"]))
            if current is not None:
                moved.append(str(instance["InstanceId"]))
    return to_tag, moved


def tag_admin(ec2: Client, instance_ids: list[str], admin_cidr: str) -> None:
    if instance_ids:
        ec2.create_tags(Resources=instance_ids, Tags=[{"Key": TAG_ADMIN_CIDR, "Value": admin_cidr}])


def ssh_reachable(address: str, port: int = 22, timeout: float = 5, tries: int = 3) -> bool:
    """A TCP connection to SSH succeeds (ufw drops the packets of an address it
    does not admit, so this times out)."""
    for _ in range(tries):
        try:
            with socket.create_connection((address, port), timeout=timeout):
                return True
        except OSError:
            time.sleep(1)
    return False


def let_admin_back_in(
    ec2: Client,
    pending: Iterable[tuple[str, str | None]],
    progress: Progress,
    *,
    reachable: Callable[[str], bool] = ssh_reachable,
    wait_delay: float = 5,
) -> list[str]:
    """Reboot the instances (id, address) whose SSH this machine cannot reach,
    so their boot unit admits the tagged address; returns the rebooted ids."""
    locked = [iid for iid, address in pending if address and not reachable(address)]
    if not locked:
        return []
    ec2.reboot_instances(InstanceIds=locked)
    for instance_id in locked:
        progress(ProgressEvent("instance", instance_id, "updated", "rebooted: admit the new admin"))
    progress(ProgressEvent("instances", ", ".join(locked), "waiting", "until they answer again"))
    ec2.get_waiter("instance_status_ok").wait(
        InstanceIds=locked, WaiterConfig={"Delay": max(1, int(wait_delay)), "MaxAttempts": 60}
    )
    return locked
