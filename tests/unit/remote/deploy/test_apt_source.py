"""Issue 11, point 1 (scripts): an apt source is kept only once `apt-get update`
accepts it, and the error names the real cause. Runs lib.sh's `add_apt_source`
under bash with a stand-in `apt-get` that answers as apt does for each case.

Fails on the code before: mongodb.sh kept a `noble/mongodb-org/7.0` source
apt rejects and blamed "unreachable"; secantusdb.sh then failed on it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gpucost.remote.steps import SCRIPTS_DIR

pytestmark = pytest.mark.unit

LINE = "deb [signed-by=/k.gpg] https://repo.mongodb.org/apt/ubuntu noble/mongodb-org/7.0 multiverse"
ANSWERS = {
    "accepted": (0, "Hit:1 http://archive.ubuntu.com/ubuntu noble InRelease\nReading lists"),
    "no-release": (100, "Ign:2 https://repo.mongodb.org/apt/ubuntu noble/mongodb-org/7.0 X\n"
                   "Err:3 https://repo.mongodb.org/apt/ubuntu noble/mongodb-org/7.0 Release\n"
                   "  404  Not Found [IP: 203.0.113.1 443]\n"
                   "E: The repository 'https://repo.mongodb.org/apt/ubuntu noble/mongodb-org/7.0 "
                   "Release' does not have a Release file."),
    # apt-get update exits 0 when a host cannot be reached: only a warning says so.
    "unreachable": (0, "Err:2 https://repo.mongodb.org/apt/ubuntu jammy/mongodb-org/7.0 InRelease\n"
                    "  Temporary failure resolving 'repo.mongodb.org'\n"
                    "W: Failed to fetch https://repo.mongodb.org/apt/ubuntu/dists/jammy/mongodb-org"
                    "/7.0/InRelease  Temporary failure resolving 'repo.mongodb.org'"),
    # Someone else's source failing is not a reason to drop ours.
    "other-source": (0, "W: Failed to fetch http://ppa.example.org/dists/x/InRelease  timed out"),
}  # fmt: skip


def add_source(tmp_path: Path, answer: str) -> subprocess.CompletedProcess[str]:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    rc, text = ANSWERS[answer]
    (tmp_path / "answer").write_text(text + "\n")
    apt = stubs / "apt-get"
    # Only the first update answers with the case; the clean-up run succeeds.
    apt.write_text(
        f'#!/bin/bash\necho "$*" >> {tmp_path}/calls\n'
        f"[[ $(wc -l < {tmp_path}/calls) -gt 1 ]] && exit 0\n"
        f"cat {tmp_path}/answer\nexit {rc}\n"
    )
    apt.chmod(0o755)
    (tmp_path / "sources").mkdir()
    env = {
        **os.environ,
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "APT_SOURCES_DIR": str(tmp_path / "sources"),
        "PRETTY_NAME": "Ubuntu 24.04.3 LTS",
        "VERSION_CODENAME": "noble",
    }
    script = (
        f"set -euo pipefail; source {SCRIPTS_DIR / 'lib.sh'}; "
        f"add_apt_source mongodb-org-7.0 '{LINE}' \"MongoDB's repository for 7.0\" 'pick jammy'"
    )
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)


def source_file(tmp_path: Path) -> Path:
    return tmp_path / "sources" / "mongodb-org-7.0.list"


@pytest.mark.parametrize("answer", ["accepted", "other-source"])
def test_an_accepted_source_is_kept(tmp_path: Path, answer: str) -> None:
    out = add_source(tmp_path, answer)
    assert out.returncode == 0, out.stderr
    assert source_file(tmp_path).read_text() == LINE + "\n"


def test_a_release_without_packages_is_named_and_the_source_removed(tmp_path: Path) -> None:
    out = add_source(tmp_path, "no-release")
    assert out.returncode == 1
    assert not source_file(tmp_path).exists()
    error = out.stderr.strip().splitlines()[-1]
    assert "publishes no packages for Ubuntu 24.04.3 LTS (noble)" in error
    assert "unreachable" not in error
    assert "pick jammy" in error


def test_an_unreachable_repository_is_named_and_the_source_removed(tmp_path: Path) -> None:
    out = add_source(tmp_path, "unreachable")
    assert out.returncode == 1
    assert not source_file(tmp_path).exists()
    assert "(repo.mongodb.org) is unreachable" in out.stderr


def test_secantusdb_drops_a_mongodb_source_first() -> None:
    text = (SCRIPTS_DIR / "secantusdb.sh").read_text()
    assert text.index("mongodb-org-*.list") < text.index("apt_install")
