"""Where the four VMs live: the default VPC, a given subnet, or, in a region
without a default VPC, a dedicated VPC with subnets, gateway and routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from gpucost.config.settings import GpucostConfig
from gpucost.remote.providers.aws_errors import already_gone_ok
from gpucost.remote.providers.aws_tags import (
    NETWORK_ROLE,
    Client,
    deployment_filter,
    tag_spec,
    tags,
)
from gpucost.remote.providers.base import Action, Change, Progress, ProgressEvent, Resource

VPC_CIDR: Final = "10.42.0.0/16"
MAX_ZONES: Final = 3
"""Subnets made in a dedicated VPC: one per zone, so a zone out of capacity has a fallback."""


@dataclass(frozen=True)
class Subnet:
    id: str
    zone: str


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnets: tuple[Subnet, ...]
    """Candidates in order: the VMs go into the first with capacity."""
    dedicated: bool = False


def _subnets(ec2: Client, filters: list[dict[str, Any]]) -> tuple[Subnet, ...]:
    found = ec2.describe_subnets(Filters=filters)["Subnets"]
    ordered = sorted(found, key=lambda s: (s["AvailabilityZone"], s["SubnetId"]))
    return tuple(Subnet(s["SubnetId"], s["AvailabilityZone"]) for s in ordered)


def _name(config: GpucostConfig, what: str) -> str:
    return f"gpucost-{config.deployment}-{what}"


def _network_tags(config: GpucostConfig, what: str) -> list[dict[str, str]]:
    return tags(config.deployment, NETWORK_ROLE, _name(config, what))


def _dedicated_vpc(ec2: Client, deployment: str) -> str | None:
    vpcs = ec2.describe_vpcs(Filters=deployment_filter(deployment, NETWORK_ROLE))["Vpcs"]
    return str(vpcs[0]["VpcId"]) if vpcs else None


def find_network(ec2: Client, config: GpucostConfig) -> Network | None:
    """The network the VMs use, read-only; None when a dedicated VPC is needed
    and does not exist yet."""
    if config.subnet_id:
        subnet = ec2.describe_subnets(SubnetIds=[config.subnet_id])["Subnets"][0]
        return Network(subnet["VpcId"], (Subnet(subnet["SubnetId"], subnet["AvailabilityZone"]),))
    # A dedicated VPC made earlier wins, so a default VPC created since does not
    # split one deployment across two networks.
    vpc_id = _dedicated_vpc(ec2, config.deployment)
    if vpc_id is not None:
        filters = [{"Name": "vpc-id", "Values": [vpc_id]}, *deployment_filter(config.deployment)]
        return Network(vpc_id, _subnets(ec2, filters), dedicated=True)
    defaults = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not defaults:
        return None
    vpc_id = defaults[0]["VpcId"]
    subnets = _subnets(
        ec2,
        [
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "default-for-az", "Values": ["true"]},
        ],
    )
    return Network(vpc_id, subnets)


def plan_network(ec2: Client, config: GpucostConfig) -> tuple[Network | None, list[Change]]:
    network = find_network(ec2, config)
    if network is None:
        return None, [
            Change(Action.CREATE, "vpc", _name(config, "vpc"), f"{VPC_CIDR}: no default VPC"),
            Change(Action.CREATE, "internet gateway", _name(config, "igw")),
            Change(Action.CREATE, "subnets", _name(config, "subnet"), f"up to {MAX_ZONES} zones"),
            Change(Action.CREATE, "route table", _name(config, "rtb"), "0.0.0.0/0 via the gateway"),
        ]
    kind = "dedicated vpc" if network.dedicated else "vpc"
    changes = [Change(Action.KEEP, kind, network.vpc_id)]
    if network.dedicated and not network.subnets:
        changes.append(Change(Action.CREATE, "subnets", _name(config, "subnet")))
    return network, changes


def ensure_network(ec2: Client, config: GpucostConfig, progress: Progress) -> Network:
    network = find_network(ec2, config)
    if network is not None and (not network.dedicated or network.subnets):
        if network.dedicated:
            # Re-run the idempotent steps: an earlier `up` may have stopped half-way.
            return _ensure_dedicated(ec2, config, progress)
        progress(ProgressEvent("vpc", network.vpc_id, "exists", "default VPC"))
        return network
    return _ensure_dedicated(ec2, config, progress)


def _ensure_dedicated(ec2: Client, config: GpucostConfig, progress: Progress) -> Network:
    dep = config.deployment
    vpc_id = _dedicated_vpc(ec2, dep)
    if vpc_id is None:
        vpc = ec2.create_vpc(
            CidrBlock=VPC_CIDR, TagSpecifications=tag_spec("vpc", _network_tags(config, "vpc"))
        )["Vpc"]
        vpc_id = str(vpc["VpcId"])
        ec2.get_waiter("vpc_available").wait(VpcIds=[vpc_id])
        # Public DNS names help people reading `status`; the VMs use private IPs.
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        progress(ProgressEvent("vpc", vpc_id, "created", VPC_CIDR))
    else:
        progress(ProgressEvent("vpc", vpc_id, "exists", "dedicated"))

    gateways = ec2.describe_internet_gateways(Filters=deployment_filter(dep, NETWORK_ROLE))
    if gateways["InternetGateways"]:
        igw = gateways["InternetGateways"][0]
        igw_id = str(igw["InternetGatewayId"])
        attached = any(a.get("VpcId") == vpc_id for a in igw.get("Attachments", []))
    else:
        igw_id = str(
            ec2.create_internet_gateway(
                TagSpecifications=tag_spec("internet-gateway", _network_tags(config, "igw"))
            )["InternetGateway"]["InternetGatewayId"]
        )
        attached = False
        progress(ProgressEvent("internet gateway", igw_id, "created"))
    if not attached:
        ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)

    existing = {
        s.zone: s
        for s in _subnets(ec2, [{"Name": "vpc-id", "Values": [vpc_id]}, *deployment_filter(dep)])
    }
    zones = sorted(
        z["ZoneName"]
        for z in ec2.describe_availability_zones(
            Filters=[{"Name": "state", "Values": ["available"]}]
        )["AvailabilityZones"]
    )[:MAX_ZONES]
    subnets: list[Subnet] = []
    for index, zone in enumerate(zones):
        if zone in existing:
            subnets.append(existing[zone])
            continue
        created = ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=f"10.42.{index}.0/24",
            AvailabilityZone=zone,
            TagSpecifications=tag_spec("subnet", _network_tags(config, f"subnet-{zone}")),
        )["Subnet"]
        ec2.modify_subnet_attribute(
            SubnetId=created["SubnetId"], MapPublicIpOnLaunch={"Value": True}
        )
        subnets.append(Subnet(created["SubnetId"], zone))
        progress(ProgressEvent("subnet", created["SubnetId"], "created", zone))

    tables = ec2.describe_route_tables(Filters=deployment_filter(dep, NETWORK_ROLE))["RouteTables"]
    if tables:
        table = tables[0]
    else:
        table = ec2.create_route_table(
            VpcId=vpc_id, TagSpecifications=tag_spec("route-table", _network_tags(config, "rtb"))
        )["RouteTable"]
        progress(ProgressEvent("route table", table["RouteTableId"], "created"))
    table_id = table["RouteTableId"]
    if not any(
        r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("GatewayId") == igw_id
        for r in table.get("Routes", [])
    ):
        ec2.create_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id)
    associated = {a.get("SubnetId") for a in table.get("Associations", [])}
    for subnet in subnets:
        if subnet.id not in associated:
            ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet.id)
    return Network(vpc_id, tuple(subnets), dedicated=True)


def destroy_network(ec2: Client, deployment: str, progress: Progress) -> list[Resource]:
    """Remove the dedicated network, dependents first. The default VPC is never
    touched: only resources tagged as this deployment's network are."""
    removed: list[Resource] = []
    filters = deployment_filter(deployment, NETWORK_ROLE)
    for table in ec2.describe_route_tables(Filters=filters)["RouteTables"]:
        for association in table.get("Associations", []):
            if not association.get("Main"):
                with already_gone_ok():
                    ec2.disassociate_route_table(
                        AssociationId=association["RouteTableAssociationId"]
                    )
        with already_gone_ok():
            ec2.delete_route_table(RouteTableId=table["RouteTableId"])
        removed.append(Resource("route table", table["RouteTableId"]))
    for igw in ec2.describe_internet_gateways(Filters=filters)["InternetGateways"]:
        for attachment in igw.get("Attachments", []):
            with already_gone_ok():
                ec2.detach_internet_gateway(
                    InternetGatewayId=igw["InternetGatewayId"], VpcId=attachment["VpcId"]
                )
        with already_gone_ok():
            ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
        removed.append(Resource("internet gateway", igw["InternetGatewayId"]))
    for subnet in ec2.describe_subnets(Filters=filters)["Subnets"]:
        with already_gone_ok():
            ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        removed.append(Resource("subnet", subnet["SubnetId"], subnet["AvailabilityZone"]))
    for vpc in ec2.describe_vpcs(Filters=filters)["Vpcs"]:
        with already_gone_ok():
            ec2.delete_vpc(VpcId=vpc["VpcId"])
        removed.append(Resource("vpc", vpc["VpcId"]))
    for resource in removed:
        progress(ProgressEvent(resource.kind, resource.id, "deleted", resource.name))
    return removed
