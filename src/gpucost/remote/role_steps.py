"""Each role's install steps, in order, for an Inventory and its settings: pure, no SSH,
no I/O.

Everything a step needs from elsewhere arrives as arguments: the generated
passwords (`Secrets`) and the files built on this machine (`Artifacts`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote

from gpucost.config.settings import GpucostConfig
from gpucost.errors import GpucostError
from gpucost.inventory import GPU_ROLE, Host, Inventory, Role
from gpucost.remote.flows import ADMIN, API_PORT, KAFKA_PORT, MONGO_PORT, ingress
from gpucost.remote.steps import HostSteps, Step, Upload

SAMPLES_TOPIC: Final = "gpu_samples"
TOPICS: Final = ("token_usage", "token_usage.dlq", SAMPLES_TOPIC)
"""All with the same partition count: a node's events and GPU samples must share a
partition number (the processor refuses to start otherwise)."""
PROCESSOR: Final = "gpucost-processor"
PRODUCER: Final = "gpucost-producer"
AGENT: Final = "gpucost-agent"
APP_USER: Final = "gpucost"
ADMIN_USER: Final = "admin"


class InventoryNotReady(GpucostError):
    """The inventory cannot be deployed as it is."""


@dataclass(frozen=True)
class Secrets:
    mongo_admin_password: str
    mongo_app_password: str

    def values(self) -> tuple[str, ...]:
        return (self.mongo_admin_password, self.mongo_app_password)


@dataclass(frozen=True)
class Artifacts:
    """Files made on this machine and pushed to the hosts."""

    wheels: tuple[Path, ...]
    kafka_dist: Path | None = None
    """Uploaded Kafka tarball; None: the VM downloads Apache's release."""
    kafka_pin: str | None = None
    """SHA-256 of the pinned manifest inside `kafka_dist`; kafka.sh checks the upload
    against it. None: nothing pinned to check (a `dist` of yours, or the archive)."""


def allowed_sources(inventory: Inventory) -> dict[str, tuple[tuple[int, str], ...]]:
    """The port matrix (`flows.FLOWS`) as ufw rules (port, source) per VM: a role
    becomes the private address of each of its hosts; `admin` stays as it is:
    the harden script resolves it."""
    rules: dict[str, tuple[tuple[int, str], ...]] = {}
    for host in inventory.hosts:
        rules[host.name] = tuple(
            (flow.port, source)
            for flow in ingress(host.role)
            for source in _addresses(inventory, flow.source)
        )
    return rules


def _addresses(inventory: Inventory, source: str) -> tuple[str, ...]:
    if source == ADMIN:
        return (ADMIN,)
    return tuple(h.source_cidr or _private_ip(h) for h in inventory.hosts if h.role == source)


_ROLES: Final[tuple[Role, ...]] = ("kafka-zk", "mongodb", "processor", "producers")


def _private_ip(host: Host) -> str:
    if not host.private_ip:
        raise InventoryNotReady(f"{host.name} has no private IP", hint="run `gpucost up` again")
    return host.private_ip


def mongo_uri(inventory: Inventory, config: GpucostConfig, secrets: Secrets) -> str:
    host = _private_ip(inventory.by_role("mongodb"))
    db = config.mongodb.database
    password = quote(secrets.mongo_app_password, safe="")
    return f"mongodb://{APP_USER}:{password}@{host}:{MONGO_PORT}/{db}?authSource={db}"


def kafka_bootstrap(inventory: Inventory) -> str:
    return f"{_private_ip(inventory.by_role('kafka-zk'))}:{KAFKA_PORT}"


def _env_file(values: dict[str, str]) -> bytes:
    return "".join(f"{k}={v}\n" for k, v in values.items()).encode()


def common_steps(inventory: Inventory, config: GpucostConfig, host: Host) -> tuple[Step, ...]:
    rules = " ".join(f"{port}:{src}" for port, src in allowed_sources(inventory)[host.name])
    return (
        Step(
            name="boot",
            roles=_ROLES,
            wave="prepare",
            script="wait-boot.sh",
            summary="wait for cloud-init and the dpkg lock",
            check="! command -v cloud-init >/dev/null "
            "|| cloud-init status 2>/dev/null | grep -qE 'status: (done|disabled)'",
        ),
        Step(
            name="harden",
            roles=_ROLES,
            wave="prepare",
            script="harden.sh",
            summary="sshd key-only, ufw deny incoming + the port matrix",
            # The provider's knowledge wins (local: this machine's address on the
            # hosts' network, whatever GPUCOST_ADMIN_CIDR says, or ufw would lock
            # this machine out); empty: the address of the deploying SSH session.
            env=(("ADMIN_CIDR", inventory.admin_cidr or config.admin_cidr or ""), ("ALLOW", rules)),
            check="sshd -T 2>/dev/null | grep -qx 'passwordauthentication no' "
            "&& ufw status | grep -q '^Status: active'",
        ),
    )


def kafka_steps(
    inventory: Inventory, config: GpucostConfig, artifacts: Artifacts
) -> tuple[Step, ...]:
    kafka = config.kafka
    ip = _private_ip(inventory.by_role("kafka-zk"))
    uploads: tuple[Upload, ...] = ()
    if artifacts.kafka_dist is not None:
        uploads = (Upload("kafka.tgz", local=artifacts.kafka_dist),)
    source = ("pinned upload" if artifacts.kafka_pin else "upload") if uploads else "archive"
    listens = f"timeout 3 bash -c '</dev/tcp/{ip}/{KAFKA_PORT}'"
    return (
        Step(
            "java",
            ("kafka-zk",),
            "prepare",
            "java.sh",
            "Java 17 runtime",
            check="command -v java >/dev/null",
        ),
        Step(
            "kafka",
            ("kafka-zk",),
            "data",
            "kafka.sh",
            f"Kafka {kafka.version} + ZooKeeper as systemd units ({source})",
            env=(
                ("KAFKA_VERSION", kafka.version),
                ("SCALA_VERSION", kafka.scala),
                ("KAFKA_SOURCE", "upload" if uploads else "archive"),
                ("KAFKA_MANIFEST_SHA256", artifacts.kafka_pin or ""),
                ("KAFKA_MIRROR", kafka.mirror),
                ("KAFKA_SHA512", kafka.sha512 or ""),
                ("LISTEN_IP", ip),
            ),
            uploads=uploads,
            check=f"systemctl is-active --quiet zookeeper kafka && {listens}",
        ),
        Step(
            "topics",
            ("kafka-zk",),
            "data",
            "kafka-topics.sh",
            f"topics {', '.join(TOPICS)} ({kafka.partitions} partitions)",
            env=(
                ("BOOTSTRAP", f"{ip}:{KAFKA_PORT}"),
                ("TOPICS", " ".join(TOPICS)),
                ("PARTITIONS", str(kafka.partitions)),
            ),
            check="systemctl is-active --quiet kafka",
        ),
    )


def mongo_steps(inventory: Inventory, config: GpucostConfig, secrets: Secrets) -> tuple[Step, ...]:
    mongo = config.mongodb
    credentials = Upload(
        "mongo.secrets",
        content=_env_file(
            {
                "MONGO_ADMIN_PASS": secrets.mongo_admin_password,
                "MONGO_APP_PASS": secrets.mongo_app_password,
            }
        ),
        mode=0o600,
        secret=True,
    )
    env = (
        ("BIND_IP", _private_ip(inventory.by_role("mongodb"))),
        ("MONGO_DB", mongo.database),
        ("MONGO_USER", APP_USER),
        ("MONGO_ADMIN_USER", ADMIN_USER),
    )
    if mongo.server == "secantusdb":
        return (
            Step(
                "secantusdb",
                ("mongodb",),
                "data",
                "secantusdb.sh",
                "SecantusDB (MongoDB-wire stand-in) with SCRAM auth",
                env=(*env, ("SECANTUSDB_REQUIREMENT", mongo.secantusdb_requirement)),
                uploads=(credentials,),
                check="systemctl is-active --quiet secantusdb",
            ),
        )
    return (
        Step(
            "mongodb",
            ("mongodb",),
            "data",
            "mongodb.sh",
            f"MongoDB {mongo.version} from MongoDB's apt repository, auth on",
            env=(*env, ("MONGO_VERSION", mongo.version)),
            uploads=(credentials,),
            check="systemctl is-active --quiet mongod",
        ),
    )


def image_steps(config: GpucostConfig, artifacts: Artifacts, role: Role) -> tuple[Step, ...]:
    images = config.images
    uploads = tuple(Upload(f"wheels/{w.name}", local=w) for w in artifacts.wheels)
    if images.base_archive is not None:
        uploads += (Upload("base-image.tar.gz", local=images.base_archive),)
    image = shlex.quote(images.name)
    # The wheels travel with their requirements file (deploy.RUNTIME_REQUIREMENTS).
    wheel_count = sum(w.suffix == ".whl" for w in artifacts.wheels)
    return (
        Step(
            "docker",
            (role,),
            "prepare",
            "docker.sh",
            "Docker from the distribution",
            check="command -v docker >/dev/null && systemctl is-active --quiet docker",
        ),
        Step(
            "image",
            (role,),
            "prepare",
            "image.sh",
            f"build {images.name} FROM {images.base} from {wheel_count} wheels",
            env=(
                ("IMAGE", images.name),
                ("BASE_IMAGE", images.base),
                ("BASE_ARCHIVE", "base-image.tar.gz" if images.base_archive else ""),
            ),
            uploads=uploads,
            check=f"docker image inspect {image} >/dev/null 2>&1",
        ),
    )


def gpu_node(inventory: Inventory, config: GpucostConfig) -> str:
    """The node whose GPU the synthetic producers' requests name: the producers' VM,
    whose agent samples it; the processor's VM when the processor samples itself."""
    role: Role = "producers" if config.agent.on_producers else "processor"
    return inventory.by_role(role).name


def processor_step(inventory: Inventory, config: GpucostConfig, secrets: Secrets) -> Step:
    settings = {
        # From agents through Kafka, or the processor's own GPUs (else the seed trace),
        # named as its own VM.
        "GPU_SOURCE": "agent" if uses_agents(config) else "auto",
        "NODE": inventory.by_role("processor").name,
        "SAMPLES_TOPIC": SAMPLES_TOPIC,
        "PRICE_PER_HOUR_USD": repr(config.price_per_gpu_hour_usd),
        "KAFKA_BOOTSTRAP": kafka_bootstrap(inventory),
        "MONGODB_URI": mongo_uri(inventory, config, secrets),
        "MONGODB_DB": config.mongodb.database,
        "HTTP_PORT": str(API_PORT),
        # Docker restarts the container after a crash; a static member resumes its
        # partitions at once instead of stalling the group for a rebalance.
        "KAFKA_GROUP_INSTANCE_ID": PROCESSOR,
    }
    return Step(
        "processor",
        ("processor",),
        "processor",
        "processor.sh",
        f"container {PROCESSOR} on :{API_PORT}",
        env=(("IMAGE", config.images.name), ("NAME", PROCESSOR), ("PORT", str(API_PORT))),
        uploads=(Upload("processor.env", content=_env_file(settings), mode=0o600, secret=True),),
        check=f"docker inspect -f '{{{{.State.Running}}}}' {PROCESSOR} 2>/dev/null | grep -qx true",
    )


def producers_step(inventory: Inventory, config: GpucostConfig) -> Step:
    producers = config.producers
    settings = {
        "KAFKA_BOOTSTRAP": kafka_bootstrap(inventory),
        "PRODUCER_RATE": repr(producers.rate),
        "PRODUCER_NODE": gpu_node(inventory, config),
    }
    return Step(
        "producers",
        ("producers",),
        "producers",
        "producers.sh",
        f"{producers.replicas} x {PRODUCER} at {producers.rate:g}/s",
        env=(
            ("IMAGE", config.images.name),
            ("NAME", PRODUCER),
            ("REPLICAS", str(producers.replicas)),
        ),
        uploads=(Upload("producer.env", content=_env_file(settings), mode=0o600),),
        check=f'[ "$(docker ps -q --filter name=^{PRODUCER}- | wc -l)" = {producers.replicas} ]',
    )


def agent_nodes(inventory: Inventory, config: GpucostConfig) -> tuple[str, ...]:
    """The nodes a `gpucost-agent` publishes samples for: what `verify` expects to see."""
    on_vm = (inventory.by_role("producers").name,) if config.agent.on_producers else ()
    return on_vm + tuple(h.name for h in inventory.hosts if h.role == GPU_ROLE)


def uses_agents(config: GpucostConfig) -> bool:
    """Whether GPU samples come from agents (the processor then reads no GPU itself)."""
    return config.agent.on_producers or bool(config.gpu_hosts)


def agent_step(inventory: Inventory, config: GpucostConfig, host: Host) -> Step:
    """`gpucost-agent` on `host`, publishing its GPUs' samples as node `host.name`."""
    source = config.agent.gpu_source
    for listed in config.gpu_hosts:
        if listed.name == host.name:
            source = listed.gpu_source
    settings = {
        "KAFKA_BOOTSTRAP": kafka_bootstrap(inventory),
        "NODE": host.name,
        "AGENT_ID": f"{AGENT}@{host.name}",
        "GPU_SOURCE": source,
        "SAMPLES_TOPIC": SAMPLES_TOPIC,
        "KAFKA_TOPIC": TOPICS[0],
    }
    return Step(
        "agent",
        (host.role,),
        "producers",
        "agent.sh",
        f"container {AGENT}: GPU samples ({source}) to {SAMPLES_TOPIC}",
        env=(("IMAGE", config.images.name), ("NAME", AGENT)),
        uploads=(Upload("agent.env", content=_env_file(settings), mode=0o600),),
        check=f"docker inspect -f '{{{{.State.Running}}}}' {AGENT} 2>/dev/null | grep -qx true",
    )


def build_steps(
    config: GpucostConfig, inventory: Inventory, secrets: Secrets, artifacts: Artifacts
) -> tuple[HostSteps, ...]:
    """Every host's steps in order; the runner adds the order across hosts."""
    missing = [h.name for h in inventory.hosts if h.state != "running"]
    vms = [h for h in inventory.hosts if h.role != GPU_ROLE]
    if missing or len(vms) != len(_ROLES):
        raise InventoryNotReady(
            f"not every VM is running ({', '.join(missing) or 'some are absent'})",
            hint="run `gpucost up` (or `gpucost status` to see them)",
        )
    role_steps: dict[Role, tuple[Step, ...]] = {
        "kafka-zk": kafka_steps(inventory, config, artifacts),
        "mongodb": mongo_steps(inventory, config, secrets),
        "processor": (
            *image_steps(config, artifacts, "processor"),
            processor_step(inventory, config, secrets),
        ),
        "producers": (
            *image_steps(config, artifacts, "producers"),
            *(
                (agent_step(inventory, config, inventory.by_role("producers")),)
                if config.agent.on_producers
                else ()
            ),
            producers_step(inventory, config),
        ),
    }
    # A GPU host is yours: gpucost does not harden it, only runs the agent there.
    gpu_steps = (*image_steps(config, artifacts, GPU_ROLE),)
    return tuple(
        HostSteps(h.name, h.role, common_steps(inventory, config, h) + role_steps[h.role])
        for h in vms
    ) + tuple(
        HostSteps(h.name, h.role, (*gpu_steps, agent_step(inventory, config, h)))
        for h in inventory.hosts
        if h.role == GPU_ROLE
    )
