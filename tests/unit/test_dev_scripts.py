"""The developer's scripts (scripts/dev, .ci/run) are clean under shellcheck, and a
test that lacks its tool skips locally but fails in CI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support.tools import require_tool

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = [*sorted((REPO / "scripts" / "dev").glob("*.sh")), REPO / ".ci" / "run"]


def test_shellcheck_clean() -> None:
    shellcheck = require_tool("shellcheck", "apt-get install -y shellcheck")
    out = subprocess.run(
        [shellcheck, "-x", *map(str, SCRIPTS)], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout


def test_a_missing_tool_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y nothing"):
        require_tool("gpucost-no-such-tool", "apt-get install -y nothing")


def test_a_missing_tool_fails_in_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y nothing"):
        require_tool("gpucost-no-such-tool", "apt-get install -y nothing")
    with pytest.raises(pytest.fail.Exception, match="openssh-server"):
        require_tool("sshd", "apt-get install -y openssh-server", path=tmp_path / "sshd")


def test_a_tool_that_is_there_is_its_path(tmp_path: Path) -> None:
    assert require_tool("sh", "apt-get install -y dash").endswith("sh")
    there = tmp_path / "sshd"
    there.touch()
    assert require_tool("sshd", "apt-get install -y openssh-server", path=there) == str(there)
