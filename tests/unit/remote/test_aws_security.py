"""The security-group matrix: exactly the design's rules, never 0.0.0.0/0 ingress."""

from __future__ import annotations

from typing import Any

import pytest

from gpucost.config.settings import GpucostConfig
from gpucost.remote.providers import Action
from gpucost.remote.providers.aws import AwsProvider
from gpucost.remote.providers.aws_security import Rule, security_matrix
from support.aws_moto import ADMIN, Calls

pytestmark = pytest.mark.unit


def test_matrix_is_the_design() -> None:
    assert security_matrix(ADMIN) == {
        "kafka-zk": (
            Rule(22, ADMIN, "ssh from admin"),
            Rule(9092, "processor", "kafka from processor"),
            Rule(9092, "producers", "kafka from producers"),
        ),
        "mongodb": (
            Rule(22, ADMIN, "ssh from admin"),
            Rule(27017, "processor", "mongodb from processor"),
        ),
        "processor": (Rule(22, ADMIN, "ssh from admin"), Rule(8080, ADMIN, "api from admin")),
        "producers": (Rule(22, ADMIN, "ssh from admin"),),
    }


def _ingress(ec2: Any, deployment: str) -> dict[str, set[tuple[int, int, str]]]:
    """Per group name: (from port, to port, source) with sources as group names."""
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "tag:gpucost:deployment", "Values": [deployment]}]
    )["SecurityGroups"]
    names = {g["GroupId"]: g["GroupName"] for g in groups}
    found: dict[str, set[tuple[int, int, str]]] = {}
    for group in groups:
        rules = found.setdefault(group["GroupName"], set())
        for p in group["IpPermissions"]:
            assert p["IpProtocol"] == "tcp"
            for r in p["IpRanges"]:
                rules.add((p["FromPort"], p["ToPort"], r["CidrIp"]))
            for r in p.get("Ipv6Ranges", []):
                rules.add((p["FromPort"], p["ToPort"], r["CidrIpv6"]))
            for g in p["UserIdGroupPairs"]:
                rules.add((p["FromPort"], p["ToPort"], names[g["GroupId"]]))
    return found


EXPECTED = {
    "gpucost-test-kafka-zk": {
        (22, 22, ADMIN),
        (9092, 9092, "gpucost-test-processor"),
        (9092, 9092, "gpucost-test-producers"),
    },
    "gpucost-test-mongodb": {(22, 22, ADMIN), (27017, 27017, "gpucost-test-processor")},
    "gpucost-test-processor": {(22, 22, ADMIN), (8080, 8080, ADMIN)},
    "gpucost-test-producers": {(22, 22, ADMIN)},
}


def test_converged_groups_hold_exactly_the_matrix(
    provider: AwsProvider, config: GpucostConfig, ec2: Any
) -> None:
    inventory = provider.converge(config)
    assert _ingress(ec2, "test") == EXPECTED
    # Each VM is in its own role's group, and only that one.
    for host in inventory.hosts:
        assert host.security_groups == (f"gpucost-test-{host.role}",)


def test_no_ingress_from_anywhere(provider: AwsProvider, config: GpucostConfig, ec2: Any) -> None:
    provider.converge(config)
    for sources in _ingress(ec2, "test").values():
        assert all(src not in ("0.0.0.0/0", "::/0") for _, _, src in sources)


def test_admin_cidr_of_zero_is_refused(make_config: Any) -> None:
    from gpucost.errors import ConfigError

    with pytest.raises(ConfigError, match="admin_cidr"):
        make_config(admin_cidr="0.0.0.0/0")


def test_drift_is_repaired(provider: AwsProvider, config: GpucostConfig, ec2: Any) -> None:
    provider.converge(config)
    group = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["gpucost-test-mongodb"]}]
    )["SecurityGroups"][0]
    # Someone opens MongoDB to the world by hand, and removes the processor's rule.
    ec2.authorize_security_group_ingress(
        GroupId=group["GroupId"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 27017,
                "ToPort": 27017,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    processor = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["gpucost-test-processor"]}]
    )["SecurityGroups"][0]["GroupId"]
    ec2.revoke_security_group_ingress(
        GroupId=group["GroupId"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 27017,
                "ToPort": 27017,
                "UserIdGroupPairs": [
                    {"GroupId": processor, "Description": "mongodb from processor"}
                ],
            }
        ],
    )
    pending = provider.plan(config).pending
    assert {(c.action, c.kind) for c in pending} == {
        (Action.CREATE, "ingress rule"),
        (Action.DELETE, "ingress rule"),
    }
    provider.converge(config)
    assert _ingress(ec2, "test") == EXPECTED


def test_admin_address_moves_only_its_rules(
    provider: AwsProvider, make_config: Any, ec2: Any, calls: Calls
) -> None:
    provider.converge(make_config())
    moved = make_config(admin_cidr="198.51.100.9/32")
    plan = provider.plan(moved)
    assert [(c.action, c.kind, c.detail) for c in plan.pending] == [
        (Action.UPDATE, "admin access", f"{ADMIN} -> 198.51.100.9/32")
    ] * 4
    calls.clear()
    provider.converge(moved)
    # CreateTags: the instances' admin tag, which their boot unit reads (issue 11).
    assert set(calls.mutating) == {
        "RevokeSecurityGroupIngress",
        "AuthorizeSecurityGroupIngress",
        "CreateTags",
    }
    expected = {
        name: {(a, b, "198.51.100.9/32" if src == ADMIN else src) for a, b, src in rules}
        for name, rules in EXPECTED.items()
    }
    assert _ingress(ec2, "test") == expected
