"""A real sshd on loopback for the remote layer's tests."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpucost.remote.hostkeys import HostKeyStore
from gpucost.remote.ssh import Target
from gpucost.state import StateDir
from support.sshd import SSHD, Sshd, host_for


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    if not SSHD.exists():
        pytest.skip("no /usr/sbin/sshd: apt-get install -y openssh-server")
    server = Sshd(tmp_path / "sshd", user=getpass.getuser())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path / ".gpucost", "test")


@pytest.fixture
def store(state: StateDir) -> HostKeyStore:
    return HostKeyStore(state)


@pytest.fixture
def target(sshd: Sshd) -> Target:
    return Target.of(host_for(sshd), sshd.client_key)
