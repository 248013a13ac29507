"""`gpucost-agent`'s settings: read once from the environment at the edge, validated, typed."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Final, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpucost.errors import ConfigError
from gpucost.runtime.kafka import check_bootstrap
from gpucost.runtime.sample_wire import SAMPLES_TOPIC
from gpucost.runtime.settings import GpuSourceKind, describe_validation_error

MIN_BUFFER: Final = 10


class AgentSettings(BaseSettings):
    """Names match the processor's where they mean the same (KAFKA_BOOTSTRAP, NODE, ...)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(min_length=1, description="host:port[,host:port] of the brokers.")
    node: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=256,
        description="This host's name in every sample: the one its token events carry.",
    )
    gpu_source: GpuSourceKind = "auto"
    seed_trace: Path | None = None
    sample_interval_s: float = Field(1.0, gt=0, le=60)
    samples_topic: str = Field(SAMPLES_TOPIC, min_length=1, max_length=249)
    events_topic: str = Field(
        "token_usage",
        min_length=1,
        max_length=249,
        validation_alias="KAFKA_TOPIC",
        description="Only read: the samples topic should have as many partitions.",
    )
    agent_id: str | None = Field(None, min_length=1, max_length=256)
    buffer_max_samples: int = Field(100_000, ge=MIN_BUFFER, le=10_000_000)
    kafka_create_topics: bool = False
    kafka_partitions: int = Field(3, ge=1, le=1000)
    kafka_wait_s: float = Field(10.0, ge=0, le=600)
    flush_timeout_s: float = Field(10.0, gt=0, le=3600)
    progress_interval_s: float = Field(30.0, gt=0, le=86_400)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("kafka_bootstrap")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        return check_bootstrap(value)

    @field_validator("seed_trace")
    @classmethod
    def _seed_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @property
    def publisher_id(self) -> str:
        """The `agent` field of every sample."""
        return self.agent_id or f"gpucost-agent@{self.node}"


def load_agent_settings(**overrides: object) -> AgentSettings:
    """Build settings from the environment; any problem becomes one ConfigError line."""
    try:
        return AgentSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
