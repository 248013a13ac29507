"""The deploy stage plugs in after the provider and receives its Inventory."""

from __future__ import annotations

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
def no_stage() -> Iterator[None]:
    yield
    lifecycle.set_deploy_stage(None)


def test_up_hands_the_inventory_to_the_deploy_stage(
    use_provider: AwsProvider, config: GpucostConfig, no_stage: None
) -> None:
    seen: list[Inventory] = []

    def stage(cfg: GpucostConfig, inventory: Inventory, progress: Progress) -> None:
        progress(ProgressEvent("step", "noop", "created"))
        seen.append(inventory)

    lifecycle.set_deploy_stage(stage)
    inventory = lifecycle.up(config)
    assert seen == [inventory]
    assert inventory.running
    assert inventory.by_role("mongodb").name == "vm2"


def test_infra_only_skips_the_stage(
    use_provider: AwsProvider, config: GpucostConfig, no_stage: None
) -> None:
    lifecycle.set_deploy_stage(lambda *_: pytest.fail("deploy ran"))
    lifecycle.up(config, infra_only=True)


def test_without_a_stage_up_says_so(use_provider: AwsProvider, config: GpucostConfig) -> None:
    with pytest.raises(lifecycle.DeployUnavailable, match="not available yet"):
        lifecycle.up(config)


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
