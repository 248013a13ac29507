"""`up` hands the provider's Inventory to the deploy over SSH, the library's own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from gpucost.config.settings import GpucostConfig
from gpucost.inventory import Inventory
from gpucost.remote import lifecycle
from gpucost.remote.providers import Progress, ProgressEvent, get_provider, register_provider
from gpucost.remote.providers.aws import AwsProvider
from gpucost.remote.providers.base import Provider

pytestmark = pytest.mark.unit


@pytest.fixture
def own_deployer() -> Iterator[None]:
    """Every test starts and ends with the library's deployer, whatever ran before."""
    lifecycle.use_deployer()
    yield
    lifecycle.use_deployer()


def test_up_hands_the_inventory_to_the_deployer(
    use_provider: AwsProvider, config: GpucostConfig, own_deployer: None
) -> None:
    seen: list[Inventory] = []

    def deployer(cfg: GpucostConfig, inventory: Inventory, progress: Progress) -> None:
        progress(ProgressEvent("step", "noop", "created"))
        seen.append(inventory)

    lifecycle.use_deployer(deployer)
    inventory = lifecycle.up(config)
    assert seen == [inventory]
    assert inventory.running
    assert inventory.by_role("mongodb").name == "vm2"


def test_infra_only_skips_the_deploy(
    use_provider: AwsProvider, config: GpucostConfig, own_deployer: None
) -> None:
    lifecycle.use_deployer(lambda *_: pytest.fail("deploy ran"))
    lifecycle.up(config, infra_only=True)


def test_up_deploys_with_the_library_deploy_by_default(
    use_provider: AwsProvider,
    config: GpucostConfig,
    own_deployer: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gpucost.remote import deploy

    seen: list[Inventory] = []
    monkeypatch.setattr(deploy, "deploy", lambda cfg, inventory, progress: seen.append(inventory))
    inventory = lifecycle.up(config)
    assert seen == [inventory]


LIBRARY_ONLY = textwrap.dedent(
    """
    import json, sys
    from gpucost.remote import lifecycle
    import gpucost.remote.deploy
    import gpucost.remote.providers.aws, gpucost.remote.providers.local
    print(json.dumps({
        "deployer": lifecycle._deployer.__qualname__,
        "deployer_module": lifecycle._deployer.__module__,
        "cli": sorted(m for m in sys.modules if m.startswith("gpucost.cli")),
    }))
    """
)


def test_the_library_deploys_without_the_cli() -> None:
    # A fresh interpreter: in this one another test may have imported the CLI already.
    out = subprocess.run(
        [sys.executable, "-c", LIBRARY_ONLY], capture_output=True, text=True, check=True
    ).stdout
    seen = json.loads(out)
    assert seen == {
        "deployer": "deploy_over_ssh",
        "deployer_module": "gpucost.remote.lifecycle",
        "cli": [],
    }


def test_providers_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpucost.remote import providers
    from gpucost.remote.providers import ProviderUnavailable

    assert isinstance(get_provider("aws"), Provider)
    with pytest.raises(ProviderUnavailable, match="unknown provider"):
        get_provider("gcp")
    from gpucost.remote.providers.local import LocalProvider

    assert isinstance(get_provider("local"), LocalProvider)
    fake = AwsProvider()
    monkeypatch.setitem(providers._FACTORIES, "local", lambda: fake)
    register_provider("local", lambda: fake)
    assert get_provider("local") is fake
