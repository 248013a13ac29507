"""The firewall of the design: one security group per role, referring to each
other, and never any ingress from 0.0.0.0/0.

The rules are derived from the one port matrix, `gpucost.remote.flows`, which
also gives the ufw rules on each host and what `verify` expects.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from gpucost.config.settings import GpucostConfig
from gpucost.inventory import GPU_ROLE, ROLES, Role
from gpucost.remote.flows import ADMIN, ingress
from gpucost.remote.providers.aws_errors import already_gone_ok, error_code
from gpucost.remote.providers.aws_tags import (
    TAG_ROLE,
    Client,
    deployment_filter,
    tag_spec,
    tag_value,
    tags,
)
from gpucost.remote.providers.base import (
    ADMIN_ACCESS,
    Action,
    Change,
    Progress,
    ProgressEvent,
    Resource,
)


@dataclass(frozen=True, order=True)
class Rule:
    """Ingress on one TCP port from a CIDR or from another role's group."""

    port: int
    source: str
    """A CIDR such as 203.0.113.7/32, or a role name such as "processor"."""
    description: str = ""

    @property
    def from_group(self) -> bool:
        return self.source in ROLES


def security_matrix(admin_cidr: str, gpu_cidrs: Sequence[str] = ()) -> dict[Role, tuple[Rule, ...]]:
    """The port matrix as ingress rules, per role: the admin becomes its CIDR, the
    listed GPU hosts theirs, a VM role becomes a reference to that role's group."""

    def sources(source: str) -> Sequence[str]:
        if source == ADMIN:
            return (admin_cidr,)
        if source == GPU_ROLE:
            return gpu_cidrs
        return (source,)

    return {
        role: tuple(
            Rule(f.port, src, f.description) for f in ingress(role) for src in sources(f.source)
        )
        for role in ROLES
    }


def gpu_cidrs(config: GpucostConfig) -> tuple[str, ...]:
    return tuple(h.kafka_source for h in config.gpu_hosts)


def group_name(deployment: str, role: Role) -> str:
    return f"gpucost-{deployment}-{role}"


# A permission as AWS stores it: (protocol, from port, to port, source kind, source).
Permission = tuple[str, int, int, str, str]


def _permissions(group: Mapping[str, Any]) -> dict[Permission, str | None]:
    """Each ingress permission of a group, with its description: AWS ignores the
    description when revoking, but moto matches it, so revokes pass it back."""
    found: dict[Permission, str | None] = {}
    sources = (
        ("IpRanges", "cidr", "CidrIp"),
        ("Ipv6Ranges", "cidr6", "CidrIpv6"),
        ("UserIdGroupPairs", "group", "GroupId"),
        ("PrefixListIds", "prefix", "PrefixListId"),
    )
    for p in group.get("IpPermissions", []):
        proto = str(p.get("IpProtocol"))
        start, end = int(p.get("FromPort", -1)), int(p.get("ToPort", -1))
        for field, kind, key in sources:
            for entry in p.get(field, []):
                found[(proto, start, end, kind, entry[key])] = entry.get("Description")
    return found


def _wanted(rules: Iterable[Rule], group_ids: Mapping[Role, str]) -> dict[Permission, Rule]:
    wanted: dict[Permission, Rule] = {}
    for rule in rules:
        if rule.from_group:
            key: Permission = ("tcp", rule.port, rule.port, "group", group_ids[rule.source])  # type: ignore[index]
        else:
            kind = "cidr6" if ":" in rule.source else "cidr"
            key = ("tcp", rule.port, rule.port, kind, rule.source)
        wanted[key] = rule
    return wanted


def _ip_permission(key: Permission, description: str | None = None) -> dict[str, Any]:
    proto, start, end, kind, source = key
    entry: dict[str, Any] = {"IpProtocol": proto}
    if proto != "-1":
        entry.update(FromPort=start, ToPort=end)
    extra = {"Description": description} if description else {}
    if kind == "cidr":
        entry["IpRanges"] = [{"CidrIp": source, **extra}]
    elif kind == "cidr6":
        entry["Ipv6Ranges"] = [{"CidrIpv6": source, **extra}]
    elif kind == "group":
        entry["UserIdGroupPairs"] = [{"GroupId": source, **extra}]
    else:
        entry["PrefixListIds"] = [{"PrefixListId": source, **extra}]
    return entry


def _describe(key: Permission, group_ids: Mapping[Role, str]) -> str:
    proto, start, end, _kind, source = key
    names = {gid: role for role, gid in group_ids.items()}
    port = "all" if proto == "-1" else (f"{start}" if start == end else f"{start}-{end}")
    return f"{port}/{proto if proto != '-1' else 'any'} from {names.get(source, source)}"


def find_groups(ec2: Client, deployment: str, vpc_id: str | None) -> dict[Role, dict[str, Any]]:
    filters = deployment_filter(deployment)
    if vpc_id is not None:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    groups = ec2.describe_security_groups(Filters=filters)["SecurityGroups"]
    found: dict[Role, dict[str, Any]] = {}
    for group in groups:
        role = tag_value(group, TAG_ROLE)
        if role in ROLES:
            found[role] = group
    return found


@dataclass(frozen=True)
class RuleDiff:
    role: Role
    add: tuple[tuple[Permission, Rule], ...]
    remove: tuple[tuple[Permission, str | None], ...]

    def admin_change(self, admin_cidr: str) -> tuple[str, str] | None:
        """(old, new) when the only thing that moved is the admin address."""
        old = {key[4] for key, _ in self.remove if key[3] in ("cidr", "cidr6")}
        new = {rule.source for _, rule in self.add if not rule.from_group}
        if old and new == {admin_cidr}:
            return ", ".join(sorted(old)), admin_cidr
        return None


def diff_rules(
    config: GpucostConfig, groups: Mapping[Role, Mapping[str, Any]], admin_cidr: str
) -> list[RuleDiff]:
    """Rules to add and remove per existing group. Rules that refer to a group
    not made yet are left for converge (they cannot be compared)."""
    group_ids = {role: str(g["GroupId"]) for role, g in groups.items()}
    diffs = []
    for role, rules in security_matrix(admin_cidr, gpu_cidrs(config)).items():
        group = groups.get(role)
        if group is None:
            continue
        usable = [r for r in rules if not r.from_group or r.source in group_ids]
        wanted = _wanted(usable, group_ids)
        have = _permissions(group)
        add = tuple(sorted((k, r) for k, r in wanted.items() if k not in have))
        remove = tuple(sorted((k, d) for k, d in have.items() if k not in wanted))
        if add or remove:
            diffs.append(RuleDiff(role, add, remove))
    return diffs


def plan_security(
    ec2: Client, config: GpucostConfig, vpc_id: str | None, admin_cidr: str
) -> list[Change]:
    groups = find_groups(ec2, config.deployment, vpc_id) if vpc_id else {}
    group_ids = {role: str(g["GroupId"]) for role, g in groups.items()}
    changes: list[Change] = []
    for role in ROLES:
        name = group_name(config.deployment, role)
        if role in groups:
            changes.append(Change(Action.KEEP, "security group", name, group_ids[role]))
        else:
            rules = security_matrix(admin_cidr, gpu_cidrs(config))[role]
            detail = "; ".join(f"{r.port}/tcp from {r.source}" for r in rules)
            changes.append(Change(Action.CREATE, "security group", name, detail))
    for diff in diff_rules(config, groups, admin_cidr):
        name = group_name(config.deployment, diff.role)
        moved = diff.admin_change(admin_cidr)
        if moved is not None:
            changes.append(Change(Action.UPDATE, ADMIN_ACCESS, name, f"{moved[0]} -> {moved[1]}"))
            continue
        changes.extend(
            Change(Action.CREATE, "ingress rule", name, _describe(k, group_ids))
            for k, _ in diff.add
        )
        changes.extend(
            Change(Action.DELETE, "ingress rule", name, _describe(k, group_ids))
            for k, _ in diff.remove
        )
    return changes


def ensure_groups(
    ec2: Client, config: GpucostConfig, vpc_id: str, admin_cidr: str, progress: Progress
) -> dict[Role, str]:
    """Create the four groups (all first: the rules refer to each other), then
    bring each group's ingress to exactly the matrix."""
    groups = find_groups(ec2, config.deployment, vpc_id)
    for role in ROLES:
        name = group_name(config.deployment, role)
        if role in groups:
            progress(ProgressEvent("security group", name, "exists", groups[role]["GroupId"]))
            continue
        created = ec2.create_security_group(
            GroupName=name,
            Description=f"gpucost {config.deployment}: {role}",
            VpcId=vpc_id,
            TagSpecifications=tag_spec("security-group", tags(config.deployment, role, name)),
        )
        progress(ProgressEvent("security group", name, "created", created["GroupId"]))
    groups = find_groups(ec2, config.deployment, vpc_id)
    group_ids = {role: str(g["GroupId"]) for role, g in groups.items()}
    for diff in diff_rules(config, groups, admin_cidr):
        gid = group_ids[diff.role]
        name = group_name(config.deployment, diff.role)
        if diff.remove:
            ec2.revoke_security_group_ingress(
                GroupId=gid, IpPermissions=[_ip_permission(k, d) for k, d in diff.remove]
            )
            for key, _ in diff.remove:
                progress(ProgressEvent("ingress rule", name, "deleted", _describe(key, group_ids)))
        if diff.add:
            ec2.authorize_security_group_ingress(
                GroupId=gid,
                IpPermissions=[_ip_permission(k, r.description) for k, r in diff.add],
            )
            for key, _ in diff.add:
                progress(ProgressEvent("ingress rule", name, "created", _describe(key, group_ids)))
    return group_ids


def destroy_groups(
    ec2: Client,
    deployment: str,
    progress: Progress,
    *,
    attempts: int = 20,
    delay: float = 3.0,
) -> list[Resource]:
    """Revoke every ingress rule first, so no group still refers to another when
    it is deleted; then delete, retrying while terminated instances' network
    interfaces are released (DependencyViolation)."""
    groups = find_groups(ec2, deployment, None)
    for group in groups.values():
        permissions = _permissions(group)
        if permissions:
            with already_gone_ok():
                ec2.revoke_security_group_ingress(
                    GroupId=group["GroupId"],
                    IpPermissions=[_ip_permission(k, d) for k, d in permissions.items()],
                )
    removed: list[Resource] = []
    for role, group in groups.items():
        for attempt in range(attempts):
            try:
                with already_gone_ok():
                    ec2.delete_security_group(GroupId=group["GroupId"])
                break
            except ClientError as exc:
                if error_code(exc) != "DependencyViolation" or attempt == attempts - 1:
                    raise
                progress(ProgressEvent("security group", group["GroupName"], "waiting", "in use"))
                time.sleep(delay)
        resource = Resource("security group", group["GroupId"], group_name(deployment, role))
        progress(ProgressEvent(resource.kind, resource.name, "deleted", resource.id))
        removed.append(resource)
    return removed
