"""The processor's settings: read once from the environment at the edge, validated, typed."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from gpucost.errors import ConfigError

GpuSourceKind = Literal["auto", "nvml", "smi", "seed", "agent"]
HourlyPrice = Annotated[float, Field(gt=0, le=10_000)]


class PriceTable(BaseModel):
    """Prices per GPU-hour that differ from PRICE_PER_HOUR_USD: by node (a reserved host,
    a different cloud) or by GPU model, as NVML names it ("NVIDIA H200"). A node's price
    wins over its model's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nodes: dict[str, HourlyPrice] = {}
    models: dict[str, HourlyPrice] = {}


class ProcessorSettings(BaseSettings):
    """Names match the design's environment (`PRICE_PER_HOUR_USD`, `KAFKA_BOOTSTRAP`, ...)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    price_per_hour_usd: float = Field(gt=0, le=10_000, description="What one GPU costs per hour.")
    kafka_bootstrap: str = Field(min_length=1, description="host:port[,host:port] of the brokers.")
    mongodb_uri: SecretStr = Field(description="mongodb:// URI with credentials.")
    mongodb_db: str = Field("gpucost", min_length=1)
    price_table: PriceTable = Field(
        default_factory=PriceTable,
        description='JSON: {"nodes": {"gpu-7": 2.1}, "models": {"NVIDIA H200": 3.5}}.',
    )
    kafka_topic: str = "token_usage"
    samples_topic: str = Field(
        "gpu_samples", min_length=1, description="Where gpucost-agent publishes GPU samples."
    )
    samples_stale_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="With GPU_SOURCE=agent, how long a window waits for samples that stopped.",
    )
    max_future_skew_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="An event dated further ahead than this is dead-lettered as future_ts.",
    )
    kafka_dlq_topic: str = "token_usage.dlq"
    kafka_group: str = "gpucost-processor"
    kafka_group_instance_id: str | None = Field(
        None,
        min_length=1,
        description="Static group membership: a processor restarted under the same id takes "
        "its partitions back at once instead of waiting out a rebalance. One id per processor.",
    )
    kafka_create_topics: bool = Field(
        False, description="Create missing topics at start (local runs; deployments pre-create)."
    )
    kafka_partitions: int = Field(3, ge=1, le=1000)
    mongodb_collection_prefix: str = Field("", description="Isolates tests sharing a database.")
    gpu_source: GpuSourceKind = "auto"
    seed_trace: Path | None = None
    window_s: float = Field(10.0, gt=0, le=3600)
    window_grace_s: float = Field(
        1.0, ge=0, le=600, description="How long after a window ends before it is first written."
    )
    sample_interval_s: float = Field(1.0, gt=0, le=60)
    electricity_usd_per_kwh: float | None = Field(None, ge=0, le=100)
    batch_max: int = Field(2000, ge=1, le=100_000)
    batch_wait_s: float = Field(0.1, gt=0, le=10)
    http_host: str = "0.0.0.0"  # noqa: S104 - the container's port is what the firewall limits
    http_port: int = Field(8080, ge=0, le=65535)
    node: str = Field(default_factory=socket.gethostname, min_length=1)
    startup_timeout_s: float = Field(60.0, gt=0)
    drain_windows_s: float = Field(
        5.0, ge=0, le=600, description="At SIGTERM, how long to spend writing due windows."
    )
    ready_max_lag: int = Field(100_000, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def price_for(self, *, node: str, model: str | None) -> float:
        """What one GPU of this node and model costs per hour."""
        if node in self.price_table.nodes:
            return self.price_table.nodes[node]
        if model is not None and model in self.price_table.models:
            return self.price_table.models[model]
        return self.price_per_hour_usd

    @field_validator("mongodb_uri")
    @classmethod
    def _uri_scheme(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @field_validator("window_s")
    @classmethod
    def _whole_milliseconds(cls, value: float) -> float:
        # Windows are computed in integer milliseconds (documents.py).
        if abs(value * 1000 - round(value * 1000)) > 1e-6:
            raise ValueError("must be a whole number of milliseconds")
        return value

    @field_validator("seed_trace")
    @classmethod
    def _seed_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value


def load_processor_settings(**overrides: object) -> ProcessorSettings:
    """Build settings from the environment; any problem becomes one ConfigError line."""
    try:
        return ProcessorSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
    except SettingsError as error:
        # A JSON setting (PRICE_TABLE) that does not parse fails before validation.
        field = re.search(r'field "(\w+)"', str(error))
        name = field.group(1).upper() if field else "a setting"
        raise ConfigError(f"invalid settings: {name} is not valid JSON") from None


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line naming each bad setting by its environment variable, never echoing values
    (a URI holds a password). `prefix`: the settings' env prefix, added to field names."""
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in item["loc"]).upper() or "settings"
        if prefix and not name.startswith(prefix):
            name = prefix + name
        message = "is required" if item["type"] == "missing" else item["msg"].lower()
        parts.append(f"{name} {message}")
    return "invalid settings: " + "; ".join(parts)
