"""Issue 11, item 5: mongod is never left without auth when user creation
fails midway. Runs mongodb.sh under bash in a scratch root, with stand-ins for
apt, systemctl and the users' Python (which fails), and checks what stays.

Fails on the code before: mongod kept the loopback config without auth.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gpucost.remote.steps import SCRIPTS_DIR

pytestmark = pytest.mark.unit


def stub(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text(
        'ID=ubuntu\nVERSION_CODENAME=jammy\nPRETTY_NAME="Ubuntu 22.04.5 LTS"\n'
    )
    (root / "etc/apt/sources.list.d").mkdir(parents=True)
    (root / "usr/share/keyrings").mkdir(parents=True)
    (root / "usr/share/keyrings/mongodb-server-7.0.gpg").write_text("key")
    (root / "var/lib/mongodb").mkdir(parents=True)
    stub(root / "opt/gpucost-mongo-tools/bin/pip", "exit 0")
    stub(root / "opt/gpucost-mongo-tools/bin/python", "echo 'createUser failed' >&2; exit 1")
    bin_ = tmp_path / "bin"
    stub(bin_ / "apt-get", "exit 0")
    stub(bin_ / "dpkg-query", "echo 'install ok installed'")
    stub(bin_ / "systemctl", f'echo "$* $(grep -c authorization {root}/etc/mongod.conf)" '
         f">> {tmp_path}/systemctl")  # fmt: skip
    return root


def test_a_failed_user_creation_leaves_auth_on(root: Path, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "mongo.secrets").write_text("MONGO_ADMIN_PASS=a\nMONGO_APP_PASS=b\n")
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "GPUCOST_ROOT": str(root),
        "GPUCOST_WORKDIR": str(stage),
        "BIND_IP": "10.0.0.12",
    }
    out = subprocess.run(
        ["bash", str(SCRIPTS_DIR / "mongodb.sh")], env=env, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "createUser failed" in out.stderr
    conf = (root / "etc/mongod.conf").read_text()
    assert "authorization: enabled" in conf
    assert "bindIp: 127.0.0.1,10.0.0.12" in conf
    # mongod went without auth for the users, and was restarted with auth after.
    restarts = (tmp_path / "systemctl").read_text().splitlines()
    assert restarts[0] == "restart mongod 0"
    assert restarts[-1] == "restart mongod 1"
    assert not (root / "var/lib/mongodb/.gpucost-users").exists()
