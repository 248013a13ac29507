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
    source: Literal["archive", "maven"] = "archive"
    """archive: the VM downloads Apache's release and checks its SHA-512;
    maven: this machine fetches the jars (scripts/dev/kafka-fetch.sh) and uploads
    them, for VMs without a route to the Apache archive."""
    dist: Path | None = None
    """A Kafka tarball on this machine (Apache's .tgz or a libs/ + config/ tree);
    uploaded over SFTP instead of any download."""
    sha512: str | None = None
    """Expected SHA-512 of the archive; unset: Apache's published .sha512 file."""
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
