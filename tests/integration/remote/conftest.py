"""A real sshd on loopback for the remote layer's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpucost.remote.hostkeys import HostKeyStore
from gpucost.remote.ssh import Target
from gpucost.state import StateDir
from support.sshd import Sshd, host_for


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path / ".gpucost", "test")


@pytest.fixture
def store(state: StateDir) -> HostKeyStore:
    return HostKeyStore(state)


@pytest.fixture
def target(sshd: Sshd) -> Target:
    return Target.of(host_for(sshd), sshd.client_key)
