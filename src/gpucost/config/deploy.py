"""The `[kafka]`, `[mongodb]`, `[images]`, `[producers]` and `[agent]` tables of
`gpucost.toml`: what the deploy over SSH installs. Every key has a default, so
files written before these tables existed still load unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Table):
    version: str = "3.9.1"
    """3.9.x is the last line with ZooKeeper mode, which the design uses."""
    scala: str = "2.13"
    source: Literal["archive", "maven"] = "maven"
    """maven: this machine fetches the jars (scripts/dev/kafka-fetch.sh), checks them
    against the pinned manifest (scripts/dev/kafka-<version>-<scala>.sha256) and
    uploads them; the VM checks them again and needs no route to any mirror.
    archive: the VM downloads Apache's release and checks its SHA-512."""
    dist: Path | None = None
    """A Kafka tarball on this machine (Apache's .tgz or a libs/ + config/ tree);
    uploaded over SFTP instead of any download."""
    sha512: str | None = None
    """Expected SHA-512 of the archive (source "archive"); unset: the .sha512 file the
    mirror publishes beside it, fetched from that same mirror."""
    mirror: str = "https://archive.apache.org/dist/kafka"
    partitions: int = Field(default=3, ge=1, le=1000)

    @field_validator("dist")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None


class MongoSettings(_Table):
    server: Literal["mongodb", "secantusdb"] = "mongodb"
    """mongodb: MongoDB from MongoDB's own apt repository; secantusdb: the
    MongoDB-wire server SecantusDB from PyPI, for machines with no route to it."""
    version: str = "7.0"
    database: str = "gpucost"
    secantusdb_requirement: str = "secantusdb==0.7.0b3"


class ImageSettings(_Table):
    base: str = "python:3.12-slim"
    """FROM of the processor/producer image; it needs python3 with pip."""
    base_archive: Path | None = None
    """A `docker save` tarball of `base`, uploaded and loaded when the VM cannot pull it."""
    python: str = "3.12"
    """The base image's Python (major.minor): the wheels are built for it."""
    name: str = "gpucost:latest"


class ProducerDeploySettings(_Table):
    replicas: int = Field(default=1, ge=0, le=2)
    rate: float = Field(default=50.0, gt=0, le=100_000)
    """Events per second of each producer container."""


class AgentDeploySettings(_Table):
    """Where `gpucost-agent` samples GPUs and publishes them to Kafka."""

    on_producers: bool = True
    """Run an agent on the producers' VM, named after it, reading `gpu_source`: the
    synthetic producers' requests are "served" by its GPU, so the four VMs show the
    whole flow (agent -> Kafka -> processor). False: the processor samples itself."""
    gpu_source: Literal["auto", "nvml", "smi", "seed"] = "seed"
    """What the producers' VM agent reads; seed: the recorded H200 trace."""


class GpuHostSettings(_Table):
    """A GPU host you already have (`[[gpu_hosts]]`): `gpucost up` runs
    `gpucost-agent` on it, beside its inference servers, and nothing else. Its
    firewall stays yours: the agent only connects out, to Kafka on vm1 (9092)."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """The node name its samples carry: the one its inference servers' events name."""
    address: str = Field(min_length=1)
    """Where this machine reaches it over SSH (an IP address or DNS name)."""
    ssh_user: str = "ubuntu"
    ssh_port: int = Field(default=22, ge=1, le=65535)
    host_key: str = Field(pattern=r"^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/=]+$")
    """Its SSH host key, "type base64" (`ssh-keyscan` on a trusted path, or
    /etc/ssh/ssh_host_ed25519_key.pub on the host): pinned, never trusted on first use."""
    source_cidr: str | None = None
    """Where vm1 sees its connections come from (for the firewall rules on vm1);
    default: `address`/32. It must reach vm1's private address."""
    gpu_source: Literal["auto", "nvml", "smi", "seed"] = "auto"

    @property
    def kafka_source(self) -> str:
        return self.source_cidr or f"{self.address}/32"
