"""Tags: how gpucost finds its AWS resources again, with or without local state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

TAG_DEPLOYMENT: Final = "gpucost:deployment"
TAG_ROLE: Final = "gpucost:role"
TAG_VM: Final = "gpucost:vm"
NETWORK_ROLE: Final = "network"
"""`gpucost:role` of the VPC, subnets, gateway and route table made where no default VPC exists."""

Client = Any
"""A boto3 client: boto3 ships no type hints, and stubs are not a dependency."""


def tags(deployment: str, role: str, name: str, **extra: str) -> list[dict[str, str]]:
    values = {TAG_DEPLOYMENT: deployment, TAG_ROLE: role, "Name": name, **extra}
    return [{"Key": k, "Value": v} for k, v in values.items()]


def tag_spec(resource_type: str, tag_list: list[dict[str, str]]) -> list[dict[str, Any]]:
    # Tagging at creation makes "created" and "findable" one atomic step, so a
    # crash between two calls never leaves an untagged orphan.
    return [{"ResourceType": resource_type, "Tags": tag_list}]


def deployment_filter(deployment: str, role: str | None = None) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = [{"Name": f"tag:{TAG_DEPLOYMENT}", "Values": [deployment]}]
    if role is not None:
        filters.append({"Name": f"tag:{TAG_ROLE}", "Values": [role]})
    return filters


def tag_value(resource: Mapping[str, Any], key: str) -> str | None:
    for tag in resource.get("Tags", []) or []:
        if tag.get("Key") == key:
            return str(tag.get("Value"))
    return None


def leftovers(ec2: Client, deployment: str) -> list[dict[str, str]]:
    """Everything still tagged with the deployment, asked type by type (the
    tag index can lag behind deletions). Terminated instances do not count:
    AWS keeps listing them, tags included, for about an hour."""
    flt = deployment_filter(deployment)
    live = ["pending", "running", "stopping", "stopped", "shutting-down"]
    found: list[dict[str, str]] = []
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[*flt, {"Name": "instance-state-name", "Values": live}]
    )
    found += [
        {"type": "instance", "id": i["InstanceId"]}
        for page in pages
        for r in page["Reservations"]
        for i in r["Instances"]
    ]
    queries = [
        ("security-group", "describe_security_groups", "SecurityGroups", "GroupId"),
        ("key-pair", "describe_key_pairs", "KeyPairs", "KeyPairId"),
        ("volume", "describe_volumes", "Volumes", "VolumeId"),
        ("route-table", "describe_route_tables", "RouteTables", "RouteTableId"),
        ("internet-gateway", "describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
        ("subnet", "describe_subnets", "Subnets", "SubnetId"),
        ("vpc", "describe_vpcs", "Vpcs", "VpcId"),
    ]
    for kind, call, key, id_key in queries:
        found += [{"type": kind, "id": r[id_key]} for r in getattr(ec2, call)(Filters=flt)[key]]
    return found
