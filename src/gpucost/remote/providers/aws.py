"""The AWS provider: the design's four VMs on EC2, converged with boto3.

Order of `converge`: key pair, network, security groups (all four before any
rule, since rules refer to groups), instances. Order of `destroy`, as AWS's own
examples do it: terminate and wait, security groups (references revoked
first), key pair, then the dedicated network if one was made.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import boto3

from gpucost.config.settings import GpucostConfig
from gpucost.errors import ConfigError
from gpucost.inventory import Inventory, VmName
from gpucost.remote.console import PublishedKeys
from gpucost.remote.providers.aws_access import (
    admin_tag_moves,
    let_admin_back_in,
    ssh_reachable,
    tag_admin,
)
from gpucost.remote.providers.aws_console import published_keys, wait_for_keys
from gpucost.remote.providers.aws_errors import CloudError, aws_errors
from gpucost.remote.providers.aws_instances import (
    check_key_pair,
    destroy_instances,
    destroy_key_pairs,
    ensure_instances,
    ensure_key_pair,
    find_instances,
    find_key_pair,
    plan_instances,
    resolve_image,
    to_hosts,
)
from gpucost.remote.providers.aws_network import destroy_network, ensure_network, plan_network
from gpucost.remote.providers.aws_security import destroy_groups, ensure_groups, plan_security
from gpucost.remote.providers.aws_tags import Client, deployment_filter
from gpucost.remote.providers.base import (
    Action,
    Change,
    Plan,
    Progress,
    ProgressEvent,
    Resource,
    no_progress,
)
from gpucost.state import AWS_FILE, StateDir

SessionFactory = Callable[[str | None], Any]


def _default_session(region: str | None) -> Any:
    # boto3 finds credentials, profile and AWS_ENDPOINT_URL by itself.
    return boto3.session.Session(region_name=region)


class AwsProvider:
    name = "aws"

    def __init__(
        self,
        session_factory: SessionFactory = _default_session,
        *,
        wait_delay: int = 5,
        group_delete_delay: float = 3.0,
        key_timeout: float = 900,
        reachable: Callable[[str], bool] = ssh_reachable,
    ) -> None:
        self._session_factory = session_factory
        self._key_timeout = key_timeout
        self._reachable = reachable
        self._wait_delay = wait_delay
        self._group_delete_delay = group_delete_delay
        # One session and client pair per region: botocore parses the large EC2
        # model once per session, which is most of a short command's time.
        self._sessions: dict[str | None, Any] = {}
        self._clients_by_region: dict[str, tuple[Client, Client]] = {}

    # --- plumbing -------------------------------------------------------

    def _state(self, config: GpucostConfig) -> StateDir:
        return StateDir.of(config)

    def _clients(self, config: GpucostConfig) -> tuple[Client, Client, str]:
        # Flags/env/file first; else the region recorded by an earlier `up`, so
        # `down` and `status` need no flag; else boto3's own default.
        recorded = (self._state(config).read_json(AWS_FILE) or {}).get("region")
        wanted = config.region or recorded
        if wanted not in self._sessions:
            self._sessions[wanted] = self._session_factory(wanted)
        session = self._sessions[wanted]
        region = session.region_name
        if not region:
            raise ConfigError(
                "no AWS region set", hint="pass --region, or set GPUCOST_REGION or AWS_REGION"
            )
        _check_region(session, str(region))
        if region not in self._clients_by_region:
            self._clients_by_region[region] = (session.client("ec2"), session.client("ssm"))
        ec2, ssm = self._clients_by_region[region]
        return ec2, ssm, str(region)

    @staticmethod
    def _admin_cidr(config: GpucostConfig) -> str:
        if config.admin_cidr is None:
            raise ConfigError(
                "no admin CIDR set: SSH would be open to nobody",
                hint="pass --admin-cidr YOUR.PUBLIC.IP/32 (`gpucost init` can detect it)",
            )
        return config.admin_cidr

    def _launch_nonce(self, state: StateDir, region: str, *, rotate: bool = False) -> str:
        data = state.read_json(AWS_FILE) or {}
        if rotate or not data.get("launch_nonce"):
            data["launch_nonce"] = secrets.token_hex(8)
        data["region"] = region
        # Saved before the first launch, so a run resumed after Ctrl-C repeats
        # the same ClientTokens.
        state.write_json(AWS_FILE, data)
        return str(data["launch_nonce"])

    # --- the Provider protocol ------------------------------------------

    def plan(self, config: GpucostConfig) -> Plan:
        admin_cidr = self._admin_cidr(config)
        public_key = config.public_key()
        ec2, ssm, region = self._clients(config)
        changes: list[Change] = []
        with aws_errors(region):
            pair = find_key_pair(ec2, config.deployment)
            if pair is None:
                changes.append(
                    Change(Action.CREATE, "key pair", config.key_name, "public key only")
                )
            else:
                check_key_pair(pair, config, public_key)
                changes.append(Change(Action.KEEP, "key pair", pair["KeyName"]))
            network, network_changes = plan_network(ec2, config)
            changes.extend(network_changes)
            vpc_id = network.vpc_id if network is not None else None
            changes.extend(plan_security(ec2, config, vpc_id, admin_cidr))
            instances = find_instances(ec2, config.deployment)
            if len(instances) < len(config.roles):
                # Fails now, in the dry run, rather than half-way through `up`.
                image_id, _ = resolve_image(ec2, ssm, config)
                changes.append(Change(Action.KEEP, "image", image_id))
            changes.extend(plan_instances(config, instances))
        return Plan(provider=self.name, deployment=config.deployment, changes=tuple(changes))

    def converge(self, config: GpucostConfig, progress: Progress = no_progress) -> Inventory:
        admin_cidr = self._admin_cidr(config)
        ec2, ssm, region = self._clients(config)
        state = self._state(config)
        nonce = [self._launch_nonce(state, region)]

        def client_token(vm: VmName) -> str:
            return f"gpucost-{config.deployment}-{vm}-{nonce[0]}"

        def rotate() -> None:
            nonce[0] = self._launch_nonce(state, region, rotate=True)

        with aws_errors(region):
            # The image, and the database it can carry, are checked before
            # anything is made.
            missing = len(find_instances(ec2, config.deployment)) < len(config.roles)
            early = resolve_image(ec2, ssm, config) if missing else None
            key_name = ensure_key_pair(ec2, config, progress)
            network = ensure_network(ec2, config, progress)
            group_ids = ensure_groups(ec2, config, network.vpc_id, admin_cidr, progress)
            instances = ensure_instances(
                ec2,
                config,
                network=network,
                group_ids=group_ids,
                key_name=key_name,
                image=lambda: early or resolve_image(ec2, ssm, config),
                client_token=client_token,
                rotate_token=rotate,
                progress=progress,
                wait_delay=self._wait_delay,
            )
            to_tag, moved = admin_tag_moves(instances, admin_cidr)
            if moved:
                # Saved before the tags move: a run stopped in between still
                # knows which instances may lock the admin out.
                data = state.read_json(AWS_FILE) or {}
                data["admin_moved"] = sorted({*data.get("admin_moved", []), *moved})
                state.write_json(AWS_FILE, data)
            tag_admin(ec2, to_tag, admin_cidr)
            for instance_id in to_tag:
                progress(ProgressEvent("admin tag", instance_id, "updated", admin_cidr))
            # Whatever keys are already printed; `ready` waits for the rest.
            keys = self._host_keys(config, ec2, instances, progress, wait=False)
        inventory = Inventory(
            deployment=config.deployment,
            provider=self.name,
            region=region,
            key_name=key_name,
            hosts=to_hosts(config, instances, keys),
        )
        # A convenience for the deploy over SSH; `inventory()` always asks AWS.
        state.write_inventory(inventory)
        return inventory

    def inventory(self, config: GpucostConfig) -> Inventory:
        ec2, _, region = self._clients(config)
        with aws_errors(region):
            instances = find_instances(ec2, config.deployment)
            pair = find_key_pair(ec2, config.deployment)
            keys = self._host_keys(config, ec2, instances, no_progress, wait=False)
        return Inventory(
            deployment=config.deployment,
            provider=self.name,
            region=region,
            key_name=pair["KeyName"] if pair else None,
            hosts=to_hosts(config, instances, keys),
        )

    def ready(
        self, config: GpucostConfig, inventory: Inventory, progress: Progress = no_progress
    ) -> Inventory:
        """Wait for every instance's host keys in its console output, then let a
        moved admin back in (reboot where SSH cannot be reached)."""
        ec2, _, region = self._clients(config)
        state = self._state(config)
        with aws_errors(region):
            instances = find_instances(ec2, config.deployment)
            keys = self._host_keys(config, ec2, instances, progress, wait=True)
            moved = (state.read_json(AWS_FILE) or {}).get("admin_moved") or []
            if moved:
                by_id = {str(i["InstanceId"]): i for i in instances.values()}
                pending = [
                    (iid, by_id[iid].get("PublicIpAddress") or by_id[iid].get("PrivateIpAddress"))
                    for iid in moved
                    if iid in by_id
                ]
                let_admin_back_in(
                    ec2, pending, progress, reachable=self._reachable, wait_delay=self._wait_delay
                )
                data = state.read_json(AWS_FILE) or {}
                data.pop("admin_moved", None)
                state.write_json(AWS_FILE, data)
        return inventory.model_copy(update={"hosts": to_hosts(config, instances, keys)})

    # --- host keys ------------------------------------------------------

    def _cached_keys(self, config: GpucostConfig) -> dict[str, PublishedKeys]:
        cached = (self._state(config).read_json(AWS_FILE) or {}).get("host_keys") or {}
        return {
            iid: PublishedKeys(
                tuple((k.split()[0], k.split()[1]) for k in entry.get("keys", [])),
                tuple(entry.get("fingerprints", [])),
            )
            for iid, entry in cached.items()
        }

    def _host_keys(
        self,
        config: GpucostConfig,
        ec2: Client,
        instances: dict[VmName, dict[str, Any]],
        progress: Progress,
        *,
        wait: bool,
    ) -> dict[str, PublishedKeys]:
        """The keys each running instance printed to its console, kept in the
        state by instance id (they survive a stop/start; the console may not)."""
        running = [
            str(i["InstanceId"]) for i in instances.values() if i["State"]["Name"] == "running"
        ]
        known = self._cached_keys(config)
        found = {iid: known[iid] for iid in running if iid in known}
        missing = [iid for iid in running if iid not in found]
        if not missing:
            return found
        if wait:
            new = wait_for_keys(
                ec2, missing, progress, timeout=self._key_timeout, delay=max(1, self._wait_delay)
            )
        else:
            new = {iid: keys for iid in missing if (keys := published_keys(ec2, iid)) is not None}
        if new:
            found.update(new)
            state = self._state(config)
            data = state.read_json(AWS_FILE) or {}
            live = {str(i["InstanceId"]) for i in instances.values()}
            data["host_keys"] = {
                iid: {"keys": list(k.as_lines()), "fingerprints": list(k.fingerprints)}
                for iid, k in {**known, **found}.items()
                if iid in live
            }
            state.write_json(AWS_FILE, data)
        return found

    def destroy(self, config: GpucostConfig, progress: Progress = no_progress) -> list[Resource]:
        ec2, _, region = self._clients(config)
        dep = config.deployment
        removed: list[Resource] = []
        with aws_errors(region):
            removed += destroy_instances(ec2, dep, progress, wait_delay=self._wait_delay)
            removed += destroy_groups(ec2, dep, progress, delay=self._group_delete_delay)
            removed += destroy_key_pairs(ec2, dep, progress)
            removed += _destroy_loose_volumes(ec2, dep, progress)
            removed += destroy_network(ec2, dep, progress)
        self._state(config).remove()
        return removed


def _check_region(session: Any, region: str) -> None:
    # A mistyped region would otherwise surface as a DNS failure deep in botocore.
    known = {
        name
        for partition in session.get_available_partitions()
        for name in session.get_available_regions("ec2", partition_name=partition)
    }
    if known and region not in known:
        raise CloudError(
            f"unknown AWS region {region!r}",
            hint="pass --region with a name such as us-east-1 "
            "(`aws ec2 describe-regions` lists yours)",
        )


def _destroy_loose_volumes(ec2: Client, deployment: str, progress: Progress) -> list[Resource]:
    """Root volumes go with their instance; one left detached (someone changed
    DeleteOnTermination) would still cost money, so it goes too."""
    filters = [*deployment_filter(deployment), {"Name": "status", "Values": ["available"]}]
    removed = []
    for volume in ec2.describe_volumes(Filters=filters)["Volumes"]:
        ec2.delete_volume(VolumeId=volume["VolumeId"])
        progress(ProgressEvent("volume", volume["VolumeId"], "deleted"))
        removed.append(Resource("volume", volume["VolumeId"]))
    return removed
