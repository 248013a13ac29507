"""What `gpucost init` makes: a commented `gpucost.toml`, an SSH key, the admin's IP."""

from __future__ import annotations

import ipaddress
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from gpucost.config.settings import GpucostConfig
from gpucost.errors import InputError

PUBLIC_IP_URL: Final = "https://checkip.amazonaws.com"


def detect_public_ip(url: str = PUBLIC_IP_URL, timeout: float = 5.0) -> str:
    """This machine's public IPv4 address as the internet sees it, as a /32."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https URL)
            text = response.read(64).decode("ascii").strip()
        return str(ipaddress.ip_network(f"{ipaddress.ip_address(text)}/32"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot detect this machine's public IP via {url}",
            hint="pass --admin-cidr YOUR.IP/32",
        ) from exc


def create_ssh_key(public_key: Path, run: Callable[..., Any] = subprocess.run) -> Path:
    """Create an ed25519 key pair (no passphrase) whose public half is `public_key`."""
    if public_key.suffix != ".pub":
        raise InputError(f"{public_key} should end in .pub")
    private = public_key.with_suffix("")
    if private.exists():
        raise InputError(f"{private} exists but {public_key} does not", hint="ssh-keygen -y -f")
    private.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gpucost", "-f", str(private)],
        check=True,
    )
    return public_key


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _home_relative(path: Path) -> str:
    # Keeps the file usable by whoever checks it out on another machine.
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def render_config(settings: GpucostConfig) -> str:
    """A commented `gpucost.toml`; unset optional settings stay as comments."""

    def line(key: str, value: object, comment: str, example: str | None = None) -> str:
        text = f"# {comment}\n"
        if value is None:
            return text + f"# {key} = {_toml_value(example)}\n\n"
        return text + f"{key} = {_toml_value(value)}\n\n"

    parts = [
        "# gpucost settings. Flags and GPUCOST_* environment variables override them.\n\n",
        line(
            "deployment", settings.deployment, "Names and tags every resource of this deployment."
        ),
        line("provider", settings.provider, 'Where the four VMs run: "aws" or "local".'),
        line(
            "region",
            settings.region,
            "AWS region; unset: AWS_REGION / AWS_DEFAULT_REGION / your AWS profile.",
            "us-east-1",
        ),
        line("instance_type", settings.instance_type, "EC2 instance type of every VM."),
        line(
            "image_id",
            settings.image_id,
            "AMI id; unset: the latest Ubuntu 22.04 LTS (MongoDB 7.0 has packages for it).",
            "ami-0123456789abcdef0",
        ),
        line(
            "subnet_id",
            settings.subnet_id,
            "Subnet of the four VMs; unset: the default VPC (or a dedicated one if none).",
            "subnet-0123456789abcdef0",
        ),
        line(
            "admin_cidr",
            settings.admin_cidr,
            "Who may reach SSH (22) and the API (8080): your public IP as a /32.",
            "203.0.113.7/32",
        ),
        line(
            "ssh_public_key",
            _home_relative(settings.ssh_public_key),
            "Only this public key is uploaded.",
        ),
        line(
            "price_per_gpu_hour_usd",
            settings.price_per_gpu_hour_usd,
            "What one GPU-hour costs you, in USD; the processor prices tokens with it.",
        ),
        "# Which role runs on which VM (each role exactly once).\n[roles]\n",
        *(f"{vm} = {_toml_value(role)}\n" for vm, role in settings.roles.items()),
    ]
    return "".join(parts)


def write_config(path: Path, settings: GpucostConfig, *, force: bool = False) -> Path:
    if path.exists() and not force:
        raise InputError(f"{path} exists", hint="pass --force to overwrite it")
    path.write_text(render_config(settings), encoding="utf-8")
    return path
