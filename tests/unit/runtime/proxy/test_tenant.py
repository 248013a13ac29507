"""Tenants from a header or the API key; the key itself never comes out."""

import json
import os
from pathlib import Path

import pytest

from gpucost.errors import ConfigError
from gpucost.runtime.proxy.tenant import TenantResolver, api_key, key_hash, load_key_names

pytestmark = pytest.mark.unit

KEY = "sk-test-0123456789"


def test_bearer_and_api_key_headers() -> None:
    assert api_key({"authorization": f"Bearer {KEY}"}) == KEY
    assert api_key({"authorization": f"bearer  {KEY} "}) == KEY
    assert api_key({"x-api-key": KEY}) == KEY
    assert api_key({"authorization": "Basic abc"}) is None
    assert api_key({}) is None


def test_unmapped_key_becomes_a_stable_hash_without_the_key() -> None:
    tenant = TenantResolver().tenant({"authorization": f"Bearer {KEY}"})
    assert tenant == key_hash(KEY)
    assert tenant is not None
    assert tenant.startswith("key-")
    assert len(tenant) == 20
    assert KEY not in tenant
    assert TenantResolver().tenant({"x-api-key": KEY}) == tenant  # same key, same tenant


def test_mapped_key_gets_its_name() -> None:
    resolver = TenantResolver(names={KEY: "team-a"})
    assert resolver.tenant({"authorization": f"Bearer {KEY}"}) == "team-a"
    assert resolver.tenant({"authorization": "Bearer other"}) == key_hash("other")


def test_header_wins_when_configured_and_sound() -> None:
    resolver = TenantResolver(header="X-Tenant", names={KEY: "team-a"})
    headers = {"authorization": f"Bearer {KEY}", "x-tenant": "team-b"}
    assert resolver.tenant(headers) == "team-b"
    # A header value that could not be stored falls back to the key.
    assert resolver.tenant({**headers, "x-tenant": "no spaces allowed"}) == "team-a"


def test_no_key_no_tenant() -> None:
    assert TenantResolver().tenant({}) is None


def test_keys_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({KEY: "team-a"}))
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError) as raised:
        load_key_names(path)
    assert "chmod 600" in raised.value.one_line()
    os.chmod(path, 0o600)
    assert load_key_names(path) == {KEY: "team-a"}


@pytest.mark.parametrize("content", ["not json", "[]", json.dumps({KEY: "bad name"})])
def test_bad_keys_file_says_so_without_echoing_keys(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError) as raised:
        load_key_names(path)
    assert KEY not in str(raised.value.one_line())
