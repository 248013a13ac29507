"""Issue 11, point 1: the OS/MongoDB pair is checked before anything is made.

Fails on the code before the support matrix: Ubuntu 24.04 was the default and
`up` launched four instances whose database host could never install MongoDB 7.0.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpucost.config.settings import GpucostConfig
from gpucost.config.support import (
    BOOKWORM,
    JAMMY,
    NOBLE,
    UBUNTU_2404_PARAMETER,
    check_mongodb,
    check_settings,
    release_of_image_name,
    release_of_parameter,
)
from gpucost.errors import ConfigError
from support.aws_moto import ADMIN, REGION, Calls
from support.cli_run import gpucost

pytestmark = pytest.mark.unit

NOBLE_AMI = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251001"
JAMMY_AMI = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20251001"


def test_the_default_image_carries_the_default_database() -> None:
    config = GpucostConfig(provider="aws")
    assert release_of_parameter(config.image_parameter) == JAMMY
    assert config.mongodb.version == "7.0"
    check_settings(config)  # no error


@pytest.mark.parametrize(
    ("name", "release"),
    [(NOBLE_AMI, NOBLE), (JAMMY_AMI, JAMMY), ("debian-12-amd64-20250101-1", BOOKWORM),
     ("my-golden-image", None)],
)  # fmt: skip
def test_release_from_the_ami_name(name: str, release: object) -> None:
    assert release_of_image_name(name) == release


def test_noble_with_7_0_names_both_and_the_nearest_choice() -> None:
    with pytest.raises(ConfigError) as caught:
        check_mongodb(NOBLE, "7.0", "vm2")
    line = caught.value.one_line()
    assert "MongoDB 7.0" in line
    assert "Ubuntu 24.04 (noble)" in line
    assert "vm2" in line
    assert "Ubuntu 22.04 (jammy)" in line
    assert '[mongodb] version = "8.0"' in line
    assert "\n" not in line


def test_secantusdb_runs_anywhere() -> None:
    config = GpucostConfig(
        provider="aws", image_parameter=UBUNTU_2404_PARAMETER, mongodb={"server": "secantusdb"}
    )
    check_settings(config)


def _noble_args(public_key: Path) -> list[str]:
    return ["--provider", "aws", "--region", REGION, "--deployment", "test",
            "--admin-cidr", ADMIN, "--ssh-public-key", str(public_key)]  # fmt: skip


def _assert_refused(out: Any) -> None:
    assert out.code == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: MongoDB 7.0 has no packages for")
    assert "Ubuntu 24.04 (noble)" in lines[0]
    assert "Ubuntu 22.04 (jammy)" in lines[0]


@pytest.mark.parametrize("extra", [["--dry-run"], ["--yes"], ["--infra-only", "--yes"]])
def test_up_refuses_noble_with_7_0_before_any_call(
    monkeypatch: pytest.MonkeyPatch, use_provider: object, calls: Calls, public_key: Path,
    extra: list[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("GPUCOST_IMAGE_PARAMETER", UBUNTU_2404_PARAMETER)
    _assert_refused(gpucost(monkeypatch, "up", *_noble_args(public_key), *extra))
    assert calls.names == []


def test_up_refuses_a_noble_image_id_before_creating_anything(
    monkeypatch: pytest.MonkeyPatch, use_provider: object, calls: Calls, public_key: Path,
    ec2: Any,
) -> None:  # fmt: skip
    noble = ec2.register_image(Name=NOBLE_AMI, RootDeviceName="/dev/sda1")["ImageId"]
    args = [*_noble_args(public_key), "--image-id", noble]
    _assert_refused(gpucost(monkeypatch, "up", *args, "--dry-run"))
    _assert_refused(gpucost(monkeypatch, "up", *args, "--yes"))
    assert calls.mutating == []


def test_a_jammy_image_id_goes_through(
    provider: Any, make_config: Callable[..., GpucostConfig], ec2: Any
) -> None:
    jammy = ec2.register_image(Name=JAMMY_AMI, RootDeviceName="/dev/sda1")["ImageId"]
    assert provider.converge(make_config(image_id=jammy)).running


def test_init_refuses_before_writing(
    monkeypatch: pytest.MonkeyPatch, public_key: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("GPUCOST_IMAGE_PARAMETER", UBUNTU_2404_PARAMETER)
    target = tmp_path / "gpucost.toml"
    out = gpucost(
        monkeypatch, "init", "--path", str(target), *_noble_args(public_key)[:2],
        "--admin-cidr", ADMIN, "--ssh-public-key", str(public_key), "--yes",
    )  # fmt: skip
    _assert_refused(out)
    assert not target.exists()
