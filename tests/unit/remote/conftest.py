"""moto in-process for the AWS provider: fake credentials, no real endpoint, a
call log to count mutating calls, and hooks to inject failures."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from gpucost.config.settings import GpucostConfig, load_config
from gpucost.remote import providers
from gpucost.remote.providers.aws import AwsProvider
from support.aws_moto import ADMIN, REGION, Calls, new_session
from support.cloud_console import cloud_init_console, new_host_key


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials only; no profile, config file, metadata service or endpoint
    of the machine running the tests is ever consulted."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("GPUCOST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # moto would load thousands of public AMIs per test; tests register their own.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def ec2(aws: None) -> Any:
    return new_session(REGION).client("ec2")


@pytest.fixture
def image_id(ec2: Any) -> str:
    return str(
        ec2.register_image(
            Name="ubuntu-24.04-test", RootDeviceName="/dev/sda1", VirtualizationType="hvm"
        )["ImageId"]
    )


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ssh")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / "id")], check=True
    )
    return directory


@pytest.fixture
def public_key(key_dir: Path) -> Path:
    return key_dir / "id.pub"


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def session_factory(aws: None, calls: Calls) -> Callable[[str | None], Any]:
    def factory(region: str | None) -> Any:
        session = new_session(region)

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            calls.names.append(model.name)
            calls.params.append((model.name, dict(params)))
            for operation, hook in calls.hooks:
                if operation == model.name:
                    hook(params)

        # before-parameter-build sees the caller's own arguments, before any
        # request is made: the place to count calls and to inject failures.
        session.events.register("before-parameter-build", record)

        def rewrite(parsed: dict[str, Any], model: Any, **_: Any) -> None:
            for operation, hook in calls.after:
                if operation == model.name:
                    hook(parsed)

        session.events.register("after-call", rewrite)
        return session

    return factory


@pytest.fixture
def reachable() -> dict[str, bool]:
    """Whether this machine reaches an address's SSH (default: yes)."""
    return {}


@pytest.fixture
def provider(
    session_factory: Callable[[str | None], Any], reachable: dict[str, bool]
) -> AwsProvider:
    return AwsProvider(
        session_factory,
        wait_delay=0,
        group_delete_delay=0,
        key_timeout=3,
        reachable=lambda address: reachable.get(address, True),
    )


@pytest.fixture(autouse=True)
def consoles(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Each moto instance's console output: cloud-init's host-key blocks with a
    key of its own, unless a test puts another text under the instance id."""
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ec2.responses.general import General
    from moto.ec2.utils import Base64EncodedString

    texts: dict[str, str] = {}

    def get_console_output(self: Any) -> ActionResult:
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        if instance.id not in texts:
            texts[instance.id] = cloud_init_console([new_host_key()])
        output = Base64EncodedString.from_raw_string(texts[instance.id])
        return ActionResult({"InstanceId": instance.id, "Timestamp": utcnow(), "Output": output})

    monkeypatch.setattr(General, "get_console_output", get_console_output)
    return texts


@pytest.fixture
def use_provider(provider: AwsProvider, monkeypatch: pytest.MonkeyPatch) -> AwsProvider:
    """Make the CLI and `lifecycle` get this provider for `--provider aws`."""
    monkeypatch.setitem(providers._FACTORIES, "aws", lambda: provider)
    return provider


@pytest.fixture
def make_config(public_key: Path, image_id: str) -> Callable[..., GpucostConfig]:
    def make(**overrides: Any) -> GpucostConfig:
        values: dict[str, Any] = {
            "provider": "aws",
            "deployment": "test",
            "region": REGION,
            "admin_cidr": ADMIN,
            "ssh_public_key": public_key,
            "image_id": image_id,
            **overrides,
        }
        return load_config(**values)

    return make


@pytest.fixture
def config(make_config: Callable[..., GpucostConfig]) -> GpucostConfig:
    return make_config()
