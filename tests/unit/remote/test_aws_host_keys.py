"""Issue 11, points 2 and 3: host keys come from the console output AWS
vouches for, are waited for before any SSH, and are bound to the instance.

Fails on the code before: the AWS inventory had no fingerprints,
GetConsoleOutput was never called, and the first connection trusted any key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gpucost.config.settings import GpucostConfig
from gpucost.inventory import Inventory
from gpucost.remote import lifecycle
from gpucost.remote.console import parse_console
from gpucost.remote.hostkeys import fingerprint
from gpucost.remote.providers.aws import AwsProvider
from gpucost.remote.providers.aws_errors import CloudError
from gpucost.remote.providers.base import Progress
from gpucost.remote.ssh import Target
from gpucost.state import StateDir
from support.aws_moto import Calls
from support.cloud_console import cloud_init_console, new_host_key

pytestmark = pytest.mark.unit


def test_parse_cloud_inits_blocks() -> None:
    keys = [new_host_key(), new_host_key()]
    parsed = parse_console(cloud_init_console(keys))
    assert parsed is not None
    assert parsed.as_lines() == tuple(k for k in keys)
    assert set(parsed.fingerprints) == {fingerprint(k.split()[1]) for k in keys}


def test_parse_without_the_syslog_prefix_and_the_last_boot_wins() -> None:
    old, new = new_host_key(), new_host_key()
    text = cloud_init_console([old], prefix="ec2: ") + cloud_init_console([new], prefix="")
    parsed = parse_console(text)
    assert parsed is not None
    assert parsed.as_lines() == (new,)


def test_a_key_the_fingerprints_do_not_list_is_dropped() -> None:
    listed, stray = new_host_key(), new_host_key()
    text = cloud_init_console([listed]).replace(listed + " root", f"{stray} root\n{listed} root")
    parsed = parse_console(text)
    assert parsed is not None
    assert parsed.as_lines() == (listed,)


def test_no_blocks_yet() -> None:
    assert parse_console("Linux version 6.8.0\ncloud-init: running modules:config\n") is None


def test_deploy_sees_the_console_keys_before_any_ssh(
    use_provider: AwsProvider, config: GpucostConfig, consoles: dict[str, str], calls: Calls
) -> None:
    seen: list[Inventory] = []

    def deployer(cfg: GpucostConfig, inventory: Inventory, progress: Progress) -> None:
        # The deploy over SSH is where SSH starts: the console was read before.
        assert "GetConsoleOutput" in calls.names
        seen.append(inventory)

    lifecycle.use_deployer(deployer)
    try:
        lifecycle.up(config)
    finally:
        lifecycle.use_deployer()
    (inventory,) = seen
    for host in inventory.hosts:
        printed = parse_console(consoles[str(host.instance_id)])
        assert printed is not None
        assert host.ssh_host_key_fingerprints == printed.fingerprints
        assert Target.of(host, config.private_key).host_keys == printed.as_lines()


def test_ready_waits_for_the_keys_and_gives_up_with_one_line(
    provider: AwsProvider, config: GpucostConfig, consoles: dict[str, str]
) -> None:
    inventory = provider.converge(config)
    for host in inventory.hosts:
        consoles[str(host.instance_id)] = "[    1.0] Booting Linux on physical CPU 0x0\n"
    # As if `up` had run before cloud-init printed anything.
    state = StateDir(config.state_root, config.deployment)
    state.write_json("aws.json", {**state.read_json("aws.json"), "host_keys": {}})
    with pytest.raises(CloudError, match="no SSH host keys in the console output of i-"):
        provider.ready(config, inventory)


def test_keys_outlive_the_console_after_a_stop_and_start(
    provider: AwsProvider, config: GpucostConfig, consoles: dict[str, str], ec2: Any
) -> None:
    first = provider.ready(config, provider.converge(config))
    ids = [str(h.instance_id) for h in first.hosts]
    ec2.stop_instances(InstanceIds=ids)
    ec2.get_waiter("instance_stopped").wait(InstanceIds=ids, WaiterConfig={"Delay": 0})
    for iid in ids:
        consoles[iid] = "[    1.0] a second boot prints no keys\n"
    again = provider.ready(config, provider.converge(config))
    assert [h.ssh_host_key_fingerprints for h in again.hosts] == [
        h.ssh_host_key_fingerprints for h in first.hosts
    ]
    assert all(h.ssh_host_key_fingerprints for h in again.hosts)


def test_status_shows_published_fingerprints(
    provider: AwsProvider, make_config: Callable[..., GpucostConfig]
) -> None:
    config = make_config()
    provider.converge(config)
    assert all(h.ssh_host_key_fingerprints for h in provider.inventory(config).hosts)
