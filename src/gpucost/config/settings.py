"""`gpucost.toml`: the settings of one deployment.

Precedence, highest first: command-line flags, `GPUCOST_*` environment
variables, the file, the defaults. Built at the edge by `load_config`, never at
import time, so `--help` and tests need no file and no environment.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gpucost.config.deploy import (
    AgentDeploySettings,
    GpuHostSettings,
    ImageSettings,
    KafkaSettings,
    MongoSettings,
    ProducerDeploySettings,
)
from gpucost.config.support import DEFAULT_IMAGE_PARAMETER
from gpucost.errors import ConfigError, InputError
from gpucost.inventory import DEFAULT_ROLES, ROLES, VM_NAMES, Role, VmName
from gpucost.remote import local_defaults

DEFAULT_CONFIG_FILE: Final = Path("gpucost.toml")

ProviderName = Literal["aws", "local"]
_DEPLOYMENT_RE: Final = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_PUBLIC_KEY_RE: Final = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) [A-Za-z0-9+/]+={0,3}(?: .*)?$"
)


class GpucostConfig(BaseSettings):
    """One deployment's settings; the names are the file's keys and, upper-cased
    with the `GPUCOST_` prefix, the environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="GPUCOST_",
        # Other parts keep their own tables in the same file ([mongodb], ...).
        extra="ignore",
        frozen=True,
    )

    deployment: str = "main"
    provider: ProviderName = "local"
    region: str | None = None
    instance_type: str = "t3a.medium"
    image_id: str | None = None
    image_parameter: str = DEFAULT_IMAGE_PARAMETER
    """Canonical's SSM parameter of the AMI: Ubuntu 22.04, which MongoDB 7.0 supports."""
    subnet_id: str | None = None
    admin_cidr: str | None = None
    ssh_public_key: Path = Path("~/.ssh/id_ed25519.pub")
    root_volume_gib: int = Field(default=20, ge=8, le=1024)
    price_per_gpu_hour_usd: float = Field(default=3.5, gt=0)
    roles: dict[VmName, Role] = Field(default_factory=lambda: dict(DEFAULT_ROLES))
    state_root: Path = Path(".gpucost")
    local_subnet: str = "172.29.0.0/24"
    """The local provider's network; vm1..vm4 are .11-.14, this machine is .1."""
    local_remove_images: bool = False
    """`down` on the local provider also removes the images it built (rebuilt in ~2 min)."""

    @model_validator(mode="before")
    @classmethod
    def _local_defaults(cls, data: Any) -> Any:
        # The local provider's hosts reach no MongoDB repository and no registry:
        # its defaults for [mongodb] and [images], under what the user set.
        if isinstance(data, dict) and data.get("provider", "local") == "local":
            return local_defaults.apply(data)
        return data

    @field_validator("local_subnet")
    @classmethod
    def _local_subnet(cls, value: str) -> str:
        try:
            network = ipaddress.ip_network(value.strip())
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a network such as 172.29.0.0/24") from exc
        if network.version != 4 or not network.is_private or network.num_addresses < 16:
            raise ValueError("use a private IPv4 network of /28 or larger")
        return str(network)

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongodb: MongoSettings = Field(default_factory=MongoSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    producers: ProducerDeploySettings = Field(default_factory=ProducerDeploySettings)
    agent: AgentDeploySettings = Field(default_factory=AgentDeploySettings)
    gpu_hosts: list[GpuHostSettings] = Field(default_factory=list)
    """`[[gpu_hosts]]`: GPU hosts you already have, each running `gpucost-agent`."""

    @field_validator("deployment")
    @classmethod
    def _deployment_name(cls, value: str) -> str:
        # The name ends up in resource names and tags: keep it short and plain.
        if not _DEPLOYMENT_RE.match(value):
            raise ValueError("use 1-31 lower-case letters, digits or '-', starting with a letter")
        return value

    @field_validator("admin_cidr")
    @classmethod
    def _admin_network(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            network = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP network such as 203.0.113.7/32") from exc
        if network.prefixlen == 0:
            raise ValueError("a /0 would open SSH to the whole internet")
        return str(network)

    @field_validator("ssh_public_key")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("roles")
    @classmethod
    def _one_vm_per_role(cls, value: dict[VmName, Role]) -> dict[VmName, Role]:
        if sorted(value) != sorted(VM_NAMES) or sorted(value.values()) != sorted(ROLES):
            raise ValueError("map each of vm1..vm4 to a different role of " + ", ".join(ROLES))
        return dict(sorted(value.items()))

    @field_validator("gpu_hosts")
    @classmethod
    def _gpu_host_names(cls, value: list[GpuHostSettings]) -> list[GpuHostSettings]:
        names = [h.name for h in value]
        clash = sorted({n for n in names if names.count(n) > 1 or n in VM_NAMES})
        if clash:
            raise ValueError(f"each GPU host needs its own name, not one of vm1..vm4: {clash}")
        return value

    @property
    def key_name(self) -> str:
        return f"gpucost-{self.deployment}"

    def role_of(self, vm: VmName) -> Role:
        return self.roles[vm]

    def vm_of(self, role: Role) -> VmName:
        return next(vm for vm, r in self.roles.items() if r == role)

    @property
    def private_key(self) -> Path:
        """The managed key's private half, next to the public one (`x.pub` -> `x`)."""
        return self.ssh_public_key.with_suffix("")

    def public_key(self) -> str:
        """The OpenSSH public key, comment dropped. Refuses anything that looks like
        a private key: only the public half may ever leave this machine."""
        path = self.ssh_public_key
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError as exc:
            raise InputError(
                f"SSH public key {path} not found",
                hint="pass --ssh-public-key PATH.pub or create one with "
                "`ssh-keygen -t ed25519` (or `gpucost init`)",
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read SSH public key {path}") from exc
        if "PRIVATE KEY" in text:
            raise InputError(
                f"{path} is a private key",
                hint="pass the .pub file; the private key never leaves this machine",
            )
        if not _PUBLIC_KEY_RE.match(text):
            raise InputError(
                f"{path} is not an OpenSSH public key",
                hint="expected a line such as 'ssh-ed25519 AAAA... you@host'",
            )
        return " ".join(text.split()[:2])


def _clean(overrides: Mapping[str, Any]) -> dict[str, Any]:
    # An option the user did not give arrives as None: it must not hide the
    # environment or the file.
    return {k: v for k, v in overrides.items() if v is not None}


def load_config(
    path: Path | None = None, *, use_file: bool = True, **overrides: Any
) -> GpucostConfig:
    """Settings from flags (`overrides`), `GPUCOST_*`, the file, defaults.

    `path=None` reads `./gpucost.toml` when it exists; an explicit path must
    exist; `use_file=False` ignores any file (what `init` starts from).
    """
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} not found", hint="create one with `gpucost init`")
    toml_file = path if path is not None else DEFAULT_CONFIG_FILE

    class _Loaded(GpucostConfig):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            if not use_file:
                return (init_settings, env_settings)
            return (
                init_settings,
                env_settings,
                TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
            )

    try:
        loaded = _Loaded(**_clean(overrides))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(
            f"invalid setting {where}: {first['msg']}",
            hint=f"fix it in {toml_file}, the GPUCOST_{where.split('.')[0].upper()} "
            "variable or the flag",
        ) from exc
    except ValueError as exc:  # a TOML syntax error
        raise ConfigError(f"cannot parse {toml_file}: {exc}") from exc
    # Hand back the plain model: the subclass only existed to pick the file.
    # Attributes, not model_dump(): the nested tables must stay models.
    return GpucostConfig.model_construct(
        **{name: getattr(loaded, name) for name in GpucostConfig.model_fields}
    )
