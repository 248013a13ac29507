"""gpucost.toml: precedence flags > GPUCOST_* > file > defaults, validation, init."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpucost.config.init_file import create_ssh_key, render_config, write_config
from gpucost.config.settings import GpucostConfig, load_config
from gpucost.errors import ConfigError, InputError

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("GPUCOST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    config = load_config()
    assert config.instance_type == "t3a.medium"
    assert config.roles == {
        "vm1": "kafka-zk",
        "vm2": "mongodb",
        "vm3": "processor",
        "vm4": "producers",
    }
    assert config.image_id is None
    assert config.admin_cidr is None
    assert config.ssh_public_key == Path("~/.ssh/id_ed25519.pub").expanduser()


def test_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("gpucost.toml").write_text(
        'region = "eu-west-1"\ninstance_type = "t3a.large"\ndeployment = "fromfile"\n'
        '[mongodb]\nserver = "secantusdb"\n'  # another part's table is not an error
    )
    monkeypatch.setenv("GPUCOST_INSTANCE_TYPE", "t3a.xlarge")
    monkeypatch.setenv("GPUCOST_DEPLOYMENT", "fromenv")
    config = load_config(deployment="fromflag", region=None)
    assert config.deployment == "fromflag"  # flag over env
    assert config.instance_type == "t3a.xlarge"  # env over file
    assert config.region == "eu-west-1"  # file over default; an unset flag hides nothing
    assert config.provider == "local"  # default


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("admin_cidr", "not-an-ip", "admin_cidr"),
        ("admin_cidr", "0.0.0.0/0", "whole internet"),
        ("deployment", "Bad_Name", "deployment"),
        (
            "roles",
            {"vm1": "mongodb", "vm2": "mongodb", "vm3": "processor", "vm4": "producers"},
            "roles",
        ),
        ("price_per_gpu_hour_usd", -1, "price_per_gpu_hour_usd"),
    ],
)
def test_invalid_settings_are_one_line(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(**{field: value})
    assert message in caught.value.one_line()
    assert "\n" not in caught.value.one_line()


def test_admin_cidr_is_normalised() -> None:
    assert load_config(admin_cidr="203.0.113.7").admin_cidr == "203.0.113.7/32"


def test_roles_from_the_file() -> None:
    Path("gpucost.toml").write_text(
        '[roles]\nvm1 = "mongodb"\nvm2 = "kafka-zk"\nvm3 = "processor"\nvm4 = "producers"\n'
    )
    config = load_config()
    assert config.vm_of("kafka-zk") == "vm2"
    assert config.role_of("vm1") == "mongodb"


def test_public_key_checks(tmp_path: Path) -> None:
    key = tmp_path / "k.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB4 someone@host\n")
    assert load_config(ssh_public_key=key).public_key() == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB4"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n")
    with pytest.raises(InputError, match="private key"):
        load_config(ssh_public_key=key).public_key()
    key.write_text("hello")
    with pytest.raises(InputError, match="not an OpenSSH public key"):
        load_config(ssh_public_key=key).public_key()
    with pytest.raises(InputError, match="not found"):
        load_config(ssh_public_key=tmp_path / "none.pub").public_key()


def test_rendered_file_round_trips(tmp_path: Path) -> None:
    config = GpucostConfig(
        deployment="demo", provider="aws", region="us-east-1", admin_cidr="203.0.113.7/32"
    )
    path = write_config(tmp_path / "gpucost.toml", config)
    text = path.read_text()
    assert "# image_id = " in text  # unset settings stay as commented examples
    assert 'ssh_public_key = "~/.ssh/id_ed25519.pub"' in text
    assert load_config(path) == load_config(**config.model_dump(exclude_unset=False))
    with pytest.raises(InputError, match="exists"):
        write_config(path, config)
    assert render_config(config) == text


def test_create_ssh_key(tmp_path: Path) -> None:
    public = create_ssh_key(tmp_path / "new" / "id_ed25519.pub")
    assert public.read_text().startswith("ssh-ed25519 ")
    assert (tmp_path / "new" / "id_ed25519").exists()
    with pytest.raises(InputError):
        create_ssh_key(tmp_path / "new" / "id_ed25519.pub")


def test_public_ip_detection_failure_is_one_line() -> None:
    from gpucost.config.init_file import detect_public_ip

    with pytest.raises(InputError) as caught:
        detect_public_ip("http://127.0.0.1:9/", timeout=1)
    assert "--admin-cidr" in caught.value.one_line()
