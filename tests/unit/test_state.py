"""The .gpucost/<deployment>/ directory: private modes, atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gpucost.inventory import Host, Inventory
from gpucost.state import StateDir, StateError

pytestmark = pytest.mark.unit


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_modes_even_with_a_lax_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        state = StateDir(tmp_path / ".gpucost", "demo")
        path = state.write_json("aws.json", {"region": "us-east-1"})
    finally:
        os.umask(old)
    assert _mode(tmp_path / ".gpucost") == 0o700
    assert _mode(state.path) == 0o700
    assert _mode(path) == 0o600
    assert state.read_json("aws.json") == {"region": "us-east-1"}


def test_existing_directory_is_tightened(tmp_path: Path) -> None:
    (tmp_path / ".gpucost" / "demo").mkdir(parents=True, mode=0o755)
    StateDir(tmp_path / ".gpucost", "demo").ensure()
    assert _mode(tmp_path / ".gpucost" / "demo") == 0o700


def test_write_replaces_atomically_and_leaves_no_temporary(tmp_path: Path) -> None:
    state = StateDir(tmp_path, "demo")
    state.write_text("f", "one")
    state.write_text("f", "two")
    assert state.read_text("f") == "two"
    assert [p.name for p in state.path.iterdir()] == ["f"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    state = StateDir(tmp_path, "demo")
    state.write_json("f.json", {"a": 1})
    with pytest.raises(TypeError):
        state.write_json("f.json", {"a": object()})
    assert state.read_json("f.json") == {"a": 1}
    assert [p.name for p in state.path.iterdir()] == ["f.json"]


def test_missing_corrupt_and_remove(tmp_path: Path) -> None:
    state = StateDir(tmp_path, "demo")
    assert state.read_json("none.json") is None
    state.write_text("bad.json", "{")
    with pytest.raises(StateError, match="not valid JSON"):
        state.read_json("bad.json")
    with pytest.raises(ValueError, match="plain file name"):
        state.file("../escape")
    state.remove()
    assert not state.exists()


def test_the_state_folder_is_named_in_one_place() -> None:
    # state.py owns a deployment's files: nothing else builds the folder by hand
    # or names one of its files.
    src = Path(__file__).resolve().parents[2] / "src" / "gpucost"
    offenders = []
    for module in sorted(src.rglob("*.py")):
        if module.name == "state.py":
            continue
        text = module.read_text()
        for needle in ("StateDir(", '"inventory.json"', '"secrets.json"', '"host_keys.json"'):
            if needle in text:
                offenders.append(f"{module.relative_to(src)}: {needle}")
    assert offenders == []


def test_inventory_round_trip(tmp_path: Path) -> None:
    host = Host(name="vm1", role="kafka-zk", provider="local", state="running")
    state = StateDir(tmp_path, "demo")
    with pytest.raises(StateError, match=r"no inventory\.json"):
        state.read_inventory()
    state.write_inventory(Inventory(deployment="demo", provider="local", hosts=(host,)))
    assert state.read_inventory().host("vm1") == host
    assert state.file("inventory.json").stat().st_mode & 0o777 == 0o600
