"""The four instances and the key pair they trust.

Launches are idempotent twice over: instances are found by tag before any
launch, and each launch carries a ClientToken, so a call retried after a
timeout or Ctrl-C never makes a second instance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from botocore.exceptions import ClientError

from gpucost.config.settings import GpucostConfig
from gpucost.config.support import check_settings, release_of_image_name
from gpucost.inventory import ABSENT, VM_NAMES, Host, Role, VmName
from gpucost.remote.cloud_config import user_data
from gpucost.remote.console import PublishedKeys
from gpucost.remote.providers.aws_access import TAG_ADMIN_CIDR
from gpucost.remote.providers.aws_errors import CloudError, error_code
from gpucost.remote.providers.aws_network import Network, Subnet
from gpucost.remote.providers.aws_tags import (
    TAG_VM,
    Client,
    deployment_filter,
    tag_spec,
    tag_value,
    tags,
)
from gpucost.remote.providers.base import Action, Change, Progress, ProgressEvent, Resource

LIVE_STATES: Final = ["pending", "running", "stopping", "stopped"]
"""Instances that count as existing; shutting-down ones are on their way out."""
TAG_KEY_DIGEST: Final = "gpucost:public-key-sha256"
SSH_USER: Final = "ubuntu"
"""The login of Canonical's Ubuntu images."""


def instance_name(deployment: str, vm: VmName) -> str:
    return f"gpucost-{deployment}-{vm}"


def find_instances(ec2: Client, deployment: str) -> dict[VmName, dict[str, Any]]:
    filters = [
        *deployment_filter(deployment),
        {"Name": "instance-state-name", "Values": LIVE_STATES},
    ]
    found: dict[VmName, dict[str, Any]] = {}
    pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
    instances = [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
    # Oldest first, so that if a duplicate ever appeared the one in use keeps its place.
    for instance in sorted(instances, key=lambda i: (i["LaunchTime"], i["InstanceId"])):
        vm = tag_value(instance, TAG_VM)
        if vm in VM_NAMES and vm not in found:
            found[vm] = instance
    return found


def _group_names(instance: Mapping[str, Any]) -> tuple[str, ...]:
    # Launched with a network interface spec, the groups sit on the interface.
    names = {g["GroupName"] for g in instance.get("SecurityGroups", []) if g.get("GroupName")}
    for interface in instance.get("NetworkInterfaces", []):
        names.update(g["GroupName"] for g in interface.get("Groups", []) if g.get("GroupName"))
    return tuple(sorted(names))


def to_hosts(
    config: GpucostConfig,
    instances: Mapping[VmName, Mapping[str, Any]],
    host_keys: Mapping[str, PublishedKeys] | None = None,
) -> tuple[Host, ...]:
    hosts = []
    for vm, role in config.roles.items():
        instance = instances.get(vm)
        if instance is None:
            hosts.append(Host(name=vm, role=role, provider="aws", state=ABSENT))
            continue
        published = (host_keys or {}).get(instance["InstanceId"])
        hosts.append(
            Host(
                name=vm,
                role=role,
                provider="aws",
                state=instance["State"]["Name"],
                instance_id=instance["InstanceId"],
                public_ip=instance.get("PublicIpAddress"),
                private_ip=instance.get("PrivateIpAddress"),
                security_groups=_group_names(instance),
                availability_zone=instance.get("Placement", {}).get("AvailabilityZone"),
                ssh_user=SSH_USER,
                ssh_host_key_fingerprints=published.fingerprints if published else (),
                ssh_host_keys=published.as_lines() if published else (),
            )
        )
    return tuple(hosts)


# --- key pair ---------------------------------------------------------------


def key_digest(public_key: str) -> str:
    return hashlib.sha256(public_key.encode("ascii")).hexdigest()


def find_key_pair(ec2: Client, deployment: str) -> dict[str, Any] | None:
    pairs = ec2.describe_key_pairs(Filters=deployment_filter(deployment))["KeyPairs"]
    return pairs[0] if pairs else None


def check_key_pair(pair: Mapping[str, Any], config: GpucostConfig, public_key: str) -> None:
    digest = tag_value(pair, TAG_KEY_DIGEST)
    if digest is not None and digest != key_digest(public_key):
        raise CloudError(
            f"key pair {pair['KeyName']} was imported from another public key than "
            f"{config.ssh_public_key}",
            hint="pass the --ssh-public-key used at the first `up`, or `gpucost down` first",
        )


def ensure_key_pair(ec2: Client, config: GpucostConfig, progress: Progress) -> str:
    """Import the public key; the private key is never read, let alone sent."""
    public_key = config.public_key()
    pair = find_key_pair(ec2, config.deployment)
    if pair is not None:
        check_key_pair(pair, config, public_key)
        progress(ProgressEvent("key pair", pair["KeyName"], "exists"))
        return str(pair["KeyName"])
    try:
        ec2.import_key_pair(
            KeyName=config.key_name,
            PublicKeyMaterial=public_key.encode("ascii"),
            TagSpecifications=tag_spec(
                "key-pair",
                tags(
                    config.deployment,
                    "ssh",
                    config.key_name,
                    **{TAG_KEY_DIGEST: key_digest(public_key)},
                ),
            ),
        )
    except ClientError as exc:
        if error_code(exc) == "InvalidKeyPair.Duplicate":
            raise CloudError(
                f"a key pair named {config.key_name} exists but is not tagged as gpucost's",
                hint="delete or rename it, or choose another --deployment name",
            ) from exc
        raise
    progress(ProgressEvent("key pair", config.key_name, "created"))
    return config.key_name


def destroy_key_pairs(ec2: Client, deployment: str, progress: Progress) -> list[Resource]:
    removed = []
    for pair in ec2.describe_key_pairs(Filters=deployment_filter(deployment))["KeyPairs"]:
        ec2.delete_key_pair(KeyName=pair["KeyName"])
        progress(ProgressEvent("key pair", pair["KeyName"], "deleted"))
        removed.append(Resource("key pair", pair["KeyPairId"], pair["KeyName"]))
    return removed


# --- image ------------------------------------------------------------------


def resolve_image(ec2: Client, ssm: Client, config: GpucostConfig) -> tuple[str, str]:
    """(image id, root device name). The root device must be named in the block
    device mapping, or the encrypted gp3 volume would be a second disk."""
    image_id = config.image_id
    if image_id is None:
        image_id = str(ssm.get_parameter(Name=config.image_parameter)["Parameter"]["Value"])
    images = ec2.describe_images(ImageIds=[image_id])["Images"]
    if not images:
        raise CloudError(
            f"image {image_id} not found", hint="pass an --image-id that exists in this region"
        )
    # The AMI's name tells its release (Canonical's and Debian's do): refuse a
    # database it cannot carry before any instance is launched.
    check_settings(config, release_of_image_name(str(images[0].get("Name") or "")))
    return image_id, str(images[0].get("RootDeviceName") or "/dev/sda1")


# --- instances --------------------------------------------------------------


def plan_instances(
    config: GpucostConfig, instances: Mapping[VmName, Mapping[str, Any]]
) -> list[Change]:
    changes = []
    for vm, role in config.roles.items():
        name = instance_name(config.deployment, vm)
        instance = instances.get(vm)
        if instance is None:
            size = config.root_volume_gib
            detail = f"{role}, {config.instance_type}, IMDSv2, encrypted gp3 {size} GiB"
            changes.append(Change(Action.CREATE, "instance", name, detail))
        elif instance["State"]["Name"] in ("stopped", "stopping"):
            changes.append(
                Change(Action.UPDATE, "instance", name, f"start {instance['InstanceId']}")
            )
        else:
            changes.append(Change(Action.KEEP, "instance", name, instance["InstanceId"]))
    return changes


def launch_request(
    config: GpucostConfig,
    vm: VmName,
    *,
    image: tuple[str, str],
    subnet_id: str,
    group_id: str,
    key_name: str,
    client_token: str,
) -> dict[str, Any]:
    """The RunInstances parameters of one VM: everything the design demands of it."""
    role = config.roles[vm]
    name = instance_name(config.deployment, vm)
    extra: dict[str, str] = {TAG_VM: vm}
    if config.admin_cidr is not None:
        # Read at boot through IMDS by the unit in the user data (aws_access).
        extra[TAG_ADMIN_CIDR] = config.admin_cidr
    instance_tags = tags(config.deployment, role, name, **extra)
    image_id, root_device = image
    return {
        "ImageId": image_id,
        "InstanceType": config.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "KeyName": key_name,
        "ClientToken": client_token,
        # An explicit interface asks for a public IP even in a subnet that does not
        # map one by default (a --subnet-id of the user's).
        "NetworkInterfaces": [
            {
                "DeviceIndex": 0,
                "SubnetId": subnet_id,
                "Groups": [group_id],
                "AssociatePublicIpAddress": True,
                "DeleteOnTermination": True,
            }
        ],
        # IMDSv2 only (no token-less SSRF reads); hop limit 1 keeps out containers
        # on a bridge network, not those with host networking (ours): what keeps
        # IMDS harmless is that it holds no secret (no instance profile, user data
        # without secrets). Tags are readable there for the admin-access unit.
        "MetadataOptions": {
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": 1,
            "HttpEndpoint": "enabled",
            "InstanceMetadataTags": "enabled",
        },
        "UserData": user_data(),
        "BlockDeviceMappings": [
            {
                "DeviceName": root_device,
                "Ebs": {
                    "VolumeSize": config.root_volume_gib,
                    "VolumeType": "gp3",
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        ],
        "TagSpecifications": [
            *tag_spec("instance", instance_tags),
            *tag_spec("volume", instance_tags),
        ],
    }


def ensure_instances(
    ec2: Client,
    config: GpucostConfig,
    *,
    network: Network,
    group_ids: Mapping[Role, str],
    key_name: str,
    image: Callable[[], tuple[str, str]],
    client_token: Callable[[VmName], str],
    rotate_token: Callable[[], None],
    progress: Progress,
    wait_delay: int,
) -> dict[VmName, dict[str, Any]]:
    instances = find_instances(ec2, config.deployment)
    for vm, instance in sorted(instances.items()):
        progress(
            ProgressEvent(
                "instance", instance_name(config.deployment, vm), "exists", instance["InstanceId"]
            )
        )

    # All four VMs share one subnet: once one exists, the others follow it, and
    # only the first launch may move on to another zone.
    in_use = next((i for i in instances.values() if i.get("SubnetId")), None)
    if in_use is not None:
        zone = in_use.get("Placement", {}).get("AvailabilityZone", "")
        candidates = [Subnet(in_use["SubnetId"], zone)]
    else:
        candidates = list(network.subnets)
    if not candidates:
        raise CloudError(f"no subnet found in {network.vpc_id}", hint="pass --subnet-id")
    pinned = in_use is not None
    zone_index = 0
    resolved: tuple[str, str] | None = None

    for vm in config.roles:
        if vm in instances:
            continue
        if resolved is None:
            resolved = image()
        while True:
            subnet = candidates[zone_index]
            request = launch_request(
                config,
                vm,
                image=resolved,
                subnet_id=subnet.id,
                group_id=group_ids[config.roles[vm]],
                key_name=key_name,
                client_token=client_token(vm),
            )
            try:
                launched = ec2.run_instances(**request)["Instances"][0]
            except ClientError as exc:
                if (
                    error_code(exc) != "InsufficientInstanceCapacity"
                    or pinned
                    or zone_index + 1 >= len(candidates)
                ):
                    raise
                zone_index += 1
                progress(
                    ProgressEvent(
                        "instance",
                        instance_name(config.deployment, vm),
                        "retrying",
                        f"no capacity in {subnet.zone}, trying {candidates[zone_index].zone}",
                    )
                )
                continue
            if launched["State"]["Name"] in ("shutting-down", "terminated"):
                # The token was spent on an instance since terminated (AWS remembers
                # tokens after termination): draw a new one and launch again.
                rotate_token()
                continue
            break
        pinned = True
        instances[vm] = launched
        progress(
            ProgressEvent(
                "instance",
                instance_name(config.deployment, vm),
                "created",
                f"{launched['InstanceId']} in {subnet.zone}",
            )
        )

    stopped = [i["InstanceId"] for i in instances.values() if i["State"]["Name"] == "stopping"]
    if stopped:
        ec2.get_waiter("instance_stopped").wait(
            InstanceIds=stopped, WaiterConfig={"Delay": wait_delay, "MaxAttempts": 60}
        )
    to_start = [
        i["InstanceId"] for i in instances.values() if i["State"]["Name"] in ("stopped", "stopping")
    ]
    if to_start:
        ec2.start_instances(InstanceIds=to_start)
        for instance_id in to_start:
            progress(ProgressEvent("instance", instance_id, "updated", "started"))
    not_running = [i["InstanceId"] for i in instances.values() if i["State"]["Name"] != "running"]
    if not_running:
        progress(ProgressEvent("instances", ", ".join(not_running), "waiting", "until running"))
        ec2.get_waiter("instance_running").wait(
            InstanceIds=not_running, WaiterConfig={"Delay": wait_delay, "MaxAttempts": 60}
        )
    # Public IPs are only known once running: read everything back.
    return find_instances(ec2, config.deployment)


def destroy_instances(
    ec2: Client, deployment: str, progress: Progress, *, wait_delay: int
) -> list[Resource]:
    filters = [
        *deployment_filter(deployment),
        {"Name": "instance-state-name", "Values": [*LIVE_STATES, "shutting-down"]},
    ]
    pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
    instances = [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
    if not instances:
        return []
    ids = [i["InstanceId"] for i in instances]
    ec2.terminate_instances(InstanceIds=ids)
    progress(ProgressEvent("instances", ", ".join(ids), "waiting", "until terminated"))
    # Security groups cannot go while an instance still uses them.
    ec2.get_waiter("instance_terminated").wait(
        InstanceIds=ids, WaiterConfig={"Delay": wait_delay, "MaxAttempts": 80}
    )
    removed = []
    for instance in instances:
        name = tag_value(instance, "Name") or ""
        progress(ProgressEvent("instance", name, "deleted", instance["InstanceId"]))
        removed.append(Resource("instance", instance["InstanceId"], name))
    return removed
