"""The proxy's settings: PROXY_<NAME> in the environment (the broker: KAFKA_BOOTSTRAP too)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Final, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpucost.errors import ConfigError
from gpucost.runtime.producer import DEFAULT_TOPIC
from gpucost.runtime.proxy.tenant import load_key_names
from gpucost.runtime.proxy.upstreams import Upstream, parse_upstreams
from gpucost.runtime.settings import describe_validation_error

ENV_PREFIX: Final = "PROXY_"


def _default_spool_dir() -> Path:
    return Path(os.environ.get("GPUCOST_CACHE", Path.home() / ".cache" / "gpucost")) / "proxy-spool"


class ProxySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, extra="ignore", frozen=True
    )

    upstreams: str = Field(
        min_length=1,
        description="The inference servers: a JSON list or `[NAME=]URL[@NODE[:GPU]],...`.",
    )
    kafka_bootstrap: str = Field(
        min_length=1, validation_alias=AliasChoices("PROXY_KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP")
    )
    kafka_topic: str = Field(
        DEFAULT_TOPIC,
        min_length=1,
        max_length=249,
        validation_alias=AliasChoices("PROXY_KAFKA_TOPIC", "KAFKA_TOPIC"),
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    tenant_header: str | None = Field(
        None, min_length=1, description="A header naming the tenant; wins over the API key."
    )
    tenant_keys_file: Path | None = Field(
        None, description="JSON object of API key -> tenant name, mode 0600."
    )
    spool_dir: Path = Field(default_factory=_default_spool_dir)
    spool_max_bytes: int = Field(64 * 1024 * 1024, ge=4096)
    delivery_timeout_s: float = Field(
        5.0, gt=0, le=300, description="A delivery the broker has not acked by then is spooled."
    )
    replay_retry_s: float = Field(1.0, gt=0, le=300)
    upstream_timeout_s: float = Field(600.0, gt=0, description="Longest wait for upstream bytes.")
    producer: str = Field(default_factory=lambda: f"gpucost-proxy@{socket.gethostname()}")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("upstreams")
    @classmethod
    def _upstreams(cls, value: str) -> str:
        parse_upstreams(value)
        return value

    @property
    def upstream_list(self) -> list[Upstream]:
        return parse_upstreams(self.upstreams)

    def key_names(self) -> dict[str, str]:
        return {} if self.tenant_keys_file is None else load_key_names(self.tenant_keys_file)


def load_proxy_settings(**overrides: object) -> ProxySettings:
    """Settings from the environment; any problem is one ConfigError line."""
    try:
        return ProxySettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, prefix=ENV_PREFIX)) from None
