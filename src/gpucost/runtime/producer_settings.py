"""The producer's settings: flags first, then the environment, validated once at the edge."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Final

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpucost.errors import ConfigError
from gpucost.runtime.kafka import check_bootstrap
from gpucost.runtime.producer import DEFAULT_TOPIC
from gpucost.runtime.synthetic import MODELS

ENV_PREFIX: Final = "PRODUCER_"


class ProducerSettings(BaseSettings):
    """Each field is a `--flag`; its environment variable is PRODUCER_<NAME>, except the
    broker and topic, which share the processor's KAFKA_BOOTSTRAP / KAFKA_TOPIC."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    bootstrap: str = Field(
        min_length=1, validation_alias=AliasChoices("KAFKA_BOOTSTRAP", "PRODUCER_BOOTSTRAP")
    )
    topic: str = Field(
        DEFAULT_TOPIC,
        min_length=1,
        max_length=249,  # Kafka's own limit on topic names
        validation_alias=AliasChoices("PRODUCER_TOPIC", "KAFKA_TOPIC"),
    )
    rate: float = Field(50.0, gt=0, le=10_000_000)
    count: int | None = Field(None, ge=1)
    duration: float | None = Field(None, gt=0)
    replay: Path | None = None
    loop: bool = False
    gpus: int = Field(1, ge=1, le=4096)
    node: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=256,
        validation_alias=AliasChoices("PRODUCER_NODE", "NODE"),
    )
    model: str | None = None
    seed: int | None = None
    mark: str | None = Field(None, min_length=1, max_length=256)
    flush_timeout: float = Field(30.0, gt=0, le=3600)
    wait: float = Field(30.0, ge=0, le=3600)

    @field_validator("bootstrap")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        return check_bootstrap(value)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str | None) -> str | None:
        if value is not None and value not in MODELS:
            raise ValueError(f"unknown model {value!r}, expected one of {', '.join(MODELS)}")
        return value

    @field_validator("replay")
    @classmethod
    def _trace_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ProducerSettings:
        if self.loop and self.replay is None:
            raise ValueError("--loop needs --replay")
        if self.replay is not None and self.model is not None:
            raise ValueError("--model restricts synthetic events; a replay keeps its models")
        return self

    @property
    def producer_id(self) -> str:
        """The `producer` field of every event: the mark if given, so a verifier finds its own."""
        return self.mark or f"gpucost-producer@{self.node}:{os.getpid()}"


def load_producer_settings(**flags: object) -> ProducerSettings:
    """Flags given (not None) override the environment; any problem is one ConfigError line."""
    given = {name: value for name, value in flags.items() if value is not None}
    try:
        return ProducerSettings(**given)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(_describe(error), "see gpucost-producer --help") from None


def _describe(error: ValidationError) -> str:
    # Name each setting the way the user can fix it (flag and variable); never echo values.
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        name = _NAMES.get(field.lower(), field)
        message = "is required" if item["type"] == "missing" else item["msg"]
        message = message.removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
        parts.append(f"{name} {message}" if name else message)
    return "invalid settings: " + "; ".join(parts)


_NAMES: Final = {
    **{
        name: f"--{name.replace('_', '-')} ({ENV_PREFIX}{name.upper()})"
        for name in ProducerSettings.model_fields
    },
    "bootstrap": "--bootstrap (KAFKA_BOOTSTRAP)",
    "kafka_bootstrap": "--bootstrap (KAFKA_BOOTSTRAP)",
    "topic": "--topic (KAFKA_TOPIC)",
    "producer_topic": "--topic (KAFKA_TOPIC)",
    "kafka_topic": "--topic (KAFKA_TOPIC)",
    "node": "--node (NODE)",
    "producer_node": "--node (NODE)",
}
