"""The AWS provider against moto in-process: what each instance is launched
with, idempotence, resume, teardown, dry run."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpucost.config.settings import GpucostConfig
from gpucost.remote.providers import Action
from gpucost.remote.providers.aws import AwsProvider
from gpucost.remote.providers.aws_errors import CloudError
from gpucost.remote.providers.aws_tags import leftovers
from support.aws_moto import ADMIN, REGION, Calls, client_error, new_session

pytestmark = pytest.mark.unit


def _instances(ec2: Any, states: tuple[str, ...] = ("pending", "running")) -> list[Any]:
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "tag:gpucost:deployment", "Values": ["test"]},
            {"Name": "instance-state-name", "Values": list(states)},
        ]
    )["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def test_four_instances_as_the_design_asks(
    provider: AwsProvider, config: GpucostConfig, ec2: Any, image_id: str
) -> None:
    inventory = provider.converge(config)
    assert [(h.name, h.role, h.state) for h in inventory.hosts] == [
        ("vm1", "kafka-zk", "running"),
        ("vm2", "mongodb", "running"),
        ("vm3", "processor", "running"),
        ("vm4", "producers", "running"),
    ]
    instances = _instances(ec2)
    assert len(instances) == 4
    assert {i["SubnetId"] for i in instances} == {instances[0]["SubnetId"]}  # one subnet
    for instance in instances:
        assert instance["InstanceType"] == "t3a.medium"
        assert instance["ImageId"] == image_id
        assert instance["KeyName"] == "gpucost-test"
        assert instance["PublicIpAddress"]
        assert instance["PrivateIpAddress"]
        metadata = instance["MetadataOptions"]
        assert metadata["HttpTokens"] == "required"
        assert metadata["HttpPutResponseHopLimit"] == 1
        assert metadata["HttpEndpoint"] == "enabled"
    for host in inventory.hosts:
        assert host.public_ip
        assert host.private_ip
        assert host.instance_id
        assert host.ssh_user == "ubuntu"


def test_root_volumes_are_encrypted_gp3(
    provider: AwsProvider, config: GpucostConfig, ec2: Any, calls: Calls
) -> None:
    provider.converge(config)
    volumes = ec2.describe_volumes(
        Filters=[{"Name": "tag:gpucost:deployment", "Values": ["test"]}]
    )["Volumes"]
    assert len(volumes) == 4
    assert all(v["Encrypted"] and v["VolumeType"] == "gp3" and v["Size"] == 20 for v in volumes)
    for request in calls.of("RunInstances"):
        (mapping,) = request["BlockDeviceMappings"]
        assert mapping["DeviceName"] == "/dev/sda1"  # the image's root device, not a 2nd disk
        assert mapping["Ebs"]["DeleteOnTermination"] is True


def test_tags(provider: AwsProvider, config: GpucostConfig, ec2: Any) -> None:
    provider.converge(config)
    for instance in _instances(ec2):
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        vm = tags["gpucost:vm"]
        assert tags == {
            "gpucost:deployment": "test",
            "gpucost:role": config.roles[vm],  # type: ignore[index]
            "gpucost:vm": vm,
            "gpucost:admin-cidr": ADMIN,
            "Name": f"gpucost-test-{vm}",
        }
    for group in ec2.describe_security_groups()["SecurityGroups"]:
        if group["GroupName"].startswith("gpucost-test-"):
            tags = {t["Key"]: t["Value"] for t in group["Tags"]}
            assert tags["gpucost:deployment"] == "test"
            assert tags["gpucost:role"] == group["GroupName"].removeprefix("gpucost-test-")
    (pair,) = ec2.describe_key_pairs(KeyNames=["gpucost-test"])["KeyPairs"]
    assert {t["Key"] for t in pair["Tags"]} >= {"gpucost:deployment", "gpucost:role", "Name"}


def test_only_the_public_key_is_sent(
    provider: AwsProvider, config: GpucostConfig, calls: Calls, public_key: Path
) -> None:
    provider.converge(config)
    (request,) = calls.of("ImportKeyPair")
    material = request["PublicKeyMaterial"].decode()
    assert material == " ".join(public_key.read_text().split()[:2])  # comment dropped
    assert "PRIVATE" not in material


def test_private_key_is_refused(
    provider: AwsProvider, make_config: Callable[..., GpucostConfig], key_dir: Path, calls: Calls
) -> None:
    with pytest.raises(Exception, match="private key"):
        provider.converge(make_config(ssh_public_key=key_dir / "id"))
    assert "ImportKeyPair" not in calls.names


def test_launches_carry_a_stable_client_token(
    provider: AwsProvider, config: GpucostConfig, calls: Calls
) -> None:
    provider.converge(config)
    tokens = [r["ClientToken"] for r in calls.of("RunInstances")]
    assert len(set(tokens)) == 4
    assert all(t.startswith("gpucost-test-vm") and len(t) <= 64 for t in tokens)


def test_second_converge_makes_no_mutating_call(
    provider: AwsProvider, config: GpucostConfig, calls: Calls, ec2: Any
) -> None:
    first = provider.converge(config)
    calls.clear()
    second = provider.converge(config)
    assert calls.mutating == []
    assert second == first
    assert provider.plan(config).in_sync
    assert len(_instances(ec2)) == 4


def test_dry_run_plan_mutates_nothing(
    provider: AwsProvider, config: GpucostConfig, calls: Calls, ec2: Any
) -> None:
    plan = provider.plan(config)
    assert calls.names
    assert calls.mutating == []
    created = sorted((c.kind, c.name) for c in plan.changes if c.action is Action.CREATE)
    assert created == sorted(
        [("key pair", "gpucost-test")]
        + [("security group", f"gpucost-test-{r}") for r in config.roles.values()]
        + [("instance", f"gpucost-test-{vm}") for vm in config.roles]
    )
    assert leftovers(ec2, "test") == []
    assert not Path(".gpucost").exists()


def test_resume_after_an_interruption_mid_way(
    provider: AwsProvider, config: GpucostConfig, calls: Calls, ec2: Any
) -> None:
    launched: list[str] = []

    def interrupt_third(params: dict[str, Any]) -> None:
        launched.append(params["ClientToken"])
        if len(launched) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the third VM is launched

    calls.inject("RunInstances", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        provider.converge(config)
    assert len(_instances(ec2)) == 2

    calls.hooks.clear()
    calls.clear()
    inventory = provider.converge(config)
    assert all(h.state == "running" for h in inventory.hosts)
    assert len(_instances(ec2)) == 4  # no duplicates
    retried = [r["ClientToken"] for r in calls.of("RunInstances")]
    # The interrupted launch is repeated with the very same token.
    assert len(retried) == 2
    assert retried[0] == launched[2]
    assert "CreateSecurityGroup" not in calls.names
    assert "ImportKeyPair" not in calls.names


def test_failure_mid_way_then_resume(
    provider: AwsProvider, config: GpucostConfig, calls: Calls, ec2: Any
) -> None:
    def refuse_second_group(params: dict[str, Any]) -> None:
        if params["GroupName"].endswith("mongodb"):
            raise client_error("RequestLimitExceeded", "CreateSecurityGroup")

    calls.inject("CreateSecurityGroup", refuse_second_group)
    with pytest.raises(CloudError, match="throttled"):
        provider.converge(config)
    calls.hooks.clear()
    calls.clear()
    provider.converge(config)
    assert calls.of("CreateSecurityGroup") == [
        {
            "GroupName": f"gpucost-test-{role}",
            "Description": f"gpucost test: {role}",
            "VpcId": calls.of("CreateSecurityGroup")[0]["VpcId"],
            "TagSpecifications": calls.of("CreateSecurityGroup")[i]["TagSpecifications"],
        }
        for i, role in enumerate(("mongodb", "processor", "producers"))
    ]
    assert len(_instances(ec2)) == 4


def test_lost_state_is_rebuilt_from_tags(
    provider: AwsProvider, config: GpucostConfig, calls: Calls
) -> None:
    first = provider.converge(config)
    for path in Path(".gpucost/test").iterdir():
        path.unlink()
    calls.clear()
    assert provider.converge(config) == first
    assert calls.mutating == []
    assert provider.inventory(config) == first


def test_state_is_private(provider: AwsProvider, config: GpucostConfig) -> None:
    provider.converge(config)
    directory = Path(".gpucost/test")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list(directory.iterdir())
    assert {p.name for p in files} == {"aws.json", "inventory.json"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert json.loads((directory / "aws.json").read_text())["region"] == REGION


def test_down_leaves_nothing_even_without_local_state(
    provider: AwsProvider, config: GpucostConfig, ec2: Any, calls: Calls
) -> None:
    provider.converge(config)
    # Resources of another deployment must survive.
    other = provider.converge(config.model_copy(update={"deployment": "other"}))
    for path in Path(".gpucost/test").iterdir():
        path.unlink()
    calls.clear()
    removed = provider.destroy(config)
    assert sorted({r.kind for r in removed}) == ["instance", "key pair", "security group"]
    assert len(removed) == 9
    assert leftovers(ec2, "test") == []
    # Teardown order: terminate, wait, revoke cross-references, groups, key pair.
    order = [n for n in calls.mutating]
    assert order.index("TerminateInstances") < order.index("RevokeSecurityGroupIngress")
    assert order.index("RevokeSecurityGroupIngress") < order.index("DeleteSecurityGroup")
    assert max(i for i, n in enumerate(order) if n == "DeleteSecurityGroup") < order.index(
        "DeleteKeyPair"
    )
    assert not Path(".gpucost/test").exists()
    assert provider.inventory(config.model_copy(update={"deployment": "other"})) == other
    # A second down finds nothing and fails on nothing.
    assert provider.destroy(config) == []


def test_stopped_instance_is_started(
    provider: AwsProvider, config: GpucostConfig, ec2: Any
) -> None:
    inventory = provider.converge(config)
    vm2 = inventory.host("vm2").instance_id
    ec2.stop_instances(InstanceIds=[vm2])
    plan = provider.plan(config)
    assert [(c.action, c.name) for c in plan.pending] == [(Action.UPDATE, "gpucost-test-vm2")]
    assert provider.converge(config).host("vm2").state == "running"


def test_image_from_the_public_ssm_parameter(
    provider: AwsProvider, make_config: Callable[..., GpucostConfig], image_id: str, calls: Calls
) -> None:
    # moto lacks Canonical's parameter and refuses to store names under /aws/:
    # the same lookup through a parameter of our own.
    config = make_config(image_id=None, image_parameter="/gpucost-test/ubuntu-24.04/ami-id")
    new_session(REGION).client("ssm").put_parameter(
        Name=config.image_parameter, Value=image_id, Type="String"
    )
    provider.converge(config)
    assert {r["ImageId"] for r in calls.of("RunInstances")} == {image_id}
    assert calls.of("GetParameter")[0] == {"Name": config.image_parameter}


def test_default_image_is_canonicals_ubuntu_2204() -> None:
    # Ubuntu 22.04: MongoDB publishes no 7.0 packages for 24.04 (issue 11).
    from gpucost.config.settings import GpucostConfig

    assert GpucostConfig().image_parameter == (
        "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id"
    )


def test_missing_ssm_parameter_says_pass_an_image(
    provider: AwsProvider, make_config: Callable[..., GpucostConfig]
) -> None:
    with pytest.raises(CloudError, match="SSM image parameter") as caught:
        provider.plan(make_config(image_id=None))
    assert "--image-id" in (caught.value.hint or "")


def test_capacity_elsewhere_moves_to_the_next_zone(
    provider: AwsProvider, config: GpucostConfig, calls: Calls, ec2: Any
) -> None:
    tried: list[str] = []

    def no_capacity_in_first_zone(params: dict[str, Any]) -> None:
        subnet = params["NetworkInterfaces"][0]["SubnetId"]
        tried.append(subnet)
        if subnet == tried[0]:
            raise client_error("InsufficientInstanceCapacity", "RunInstances")

    calls.inject("RunInstances", no_capacity_in_first_zone)
    provider.converge(config)
    instances = _instances(ec2)
    assert len(instances) == 4
    assert {i["SubnetId"] for i in instances} == {tried[1]} != {tried[0]}


def test_no_default_vpc_gets_a_dedicated_network(
    provider: AwsProvider, config: GpucostConfig, ec2: Any, calls: Calls
) -> None:
    (default,) = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default["VpcId"]]}])[
        "Subnets"
    ]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    for igw in ec2.describe_internet_gateways()["InternetGateways"]:
        ec2.detach_internet_gateway(
            InternetGatewayId=igw["InternetGatewayId"], VpcId=default["VpcId"]
        )
        ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
    ec2.delete_vpc(VpcId=default["VpcId"])

    assert any(c.kind == "vpc" and c.action is Action.CREATE for c in provider.plan(config).changes)
    provider.converge(config)
    (vpc,) = ec2.describe_vpcs()["Vpcs"]
    assert {t["Key"]: t["Value"] for t in vpc["Tags"]}["gpucost:role"] == "network"
    instances = _instances(ec2)
    assert len(instances) == 4
    assert {i["VpcId"] for i in instances} == {vpc["VpcId"]}
    (table,) = ec2.describe_route_tables(
        Filters=[{"Name": "tag:gpucost:deployment", "Values": ["test"]}]
    )["RouteTables"]
    assert any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in table["Routes"])

    calls.clear()
    provider.converge(config)
    assert calls.mutating == []

    provider.destroy(config)
    assert leftovers(ec2, "test") == []
    assert ec2.describe_vpcs()["Vpcs"] == []


def test_key_pair_from_another_key_is_an_error(
    provider: AwsProvider,
    make_config: Callable[..., GpucostConfig],
    tmp_path: Path,
) -> None:
    import subprocess

    provider.converge(make_config())
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k2")], check=True
    )
    with pytest.raises(CloudError, match="another public key"):
        provider.plan(make_config(ssh_public_key=tmp_path / "k2.pub"))


def test_a_token_spent_on_a_terminated_instance_is_replaced(
    provider: AwsProvider, config: GpucostConfig, calls: Calls, ec2: Any
) -> None:
    """AWS answers a reused ClientToken with the instance it made then, even if
    terminated since; moto does not keep tokens, so the answer is staged."""
    staged: list[str] = []

    def answer_with_a_terminated_instance(parsed: dict[str, Any]) -> None:
        if not staged:
            instance = parsed["Instances"][0]
            staged.append(instance["InstanceId"])
            ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
            instance["State"] = {"Code": 48, "Name": "terminated"}

    calls.inject_after("RunInstances", answer_with_a_terminated_instance)
    inventory = provider.converge(config)
    tokens = [r["ClientToken"] for r in calls.of("RunInstances")]
    assert len(tokens) == 5
    assert tokens[0] != tokens[1]  # vm1 launched again with a fresh token
    assert tokens[1].removeprefix("gpucost-test-vm1-") == tokens[2].removeprefix(
        "gpucost-test-vm2-"
    )
    assert inventory.host("vm1").instance_id != staged[0]
    assert len(_instances(ec2)) == 4
