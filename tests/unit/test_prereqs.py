"""scripts/dev/prereqs.sh against stand-in tools: what it installs, or the one line it
prints, when Java, Maven or cargo is missing or too old."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREREQS = REPO / "scripts" / "dev" / "prereqs.sh"
BASH = shutil.which("bash") or "/bin/bash"
RUST_PACKAGES = "cargo-web cmake build-essential pkg-config zlib1g-dev"


def _tool(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def machine(tmp_path: Path) -> Path:
    """A PATH whose java, mvn, cargo and apt-get are stand-ins; apt-get logs its
    arguments and, on install, brings Java 17 and cargo 1.96."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    # Only these on PATH, so the machine's own java, mvn and cargo stay out of sight.
    for name in ("sed", "sort", "head", "awk", "cp"):
        real = shutil.which(name)
        assert real is not None, name
        (bin_dir / name).symlink_to(real)
    _tool(bin_dir, "mvn", "exit 0")
    _tool(bin_dir, "java", """echo 'openjdk version "11.0.2" 2019-01-15' >&2""")
    _tool(bin_dir, "cargo", "echo 'cargo 1.85.0 (d73d2caf9 2024-12-31)'")
    # What an install brings: Java 17 and cargo 1.96, copied over the old ones.
    newer = tmp_path / "newer"
    newer.mkdir()
    _tool(newer, "java", """echo 'openjdk version "17.0.15" 2025-04-15' >&2""")
    _tool(newer, "cargo", "echo 'cargo 1.96.0'")
    _tool(
        bin_dir,
        "apt-get",
        f'echo "$*" >>"{tmp_path}/apt.log"\n'
        f'case "$*" in *install*) cp -p "{newer}/java" "{newer}/cargo" "{bin_dir}/" ;; esac',
    )
    return tmp_path


def _run(machine: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": str(machine / "bin"),
        "HOME": str(machine),
        "PYTHON": str(machine / "bin" / "python3"),
    }
    return subprocess.run(
        [BASH, str(PREREQS), *args], env=env, capture_output=True, text=True, timeout=60
    )


def _apt_calls(machine: Path) -> list[str]:
    log = machine / "apt.log"
    return log.read_text().splitlines() if log.exists() else []


def test_old_java_and_cargo_are_installed_as_root_or_named(machine: Path) -> None:
    out = _run(machine)
    if os.geteuid() == 0:
        assert out.returncode == 0, out.stderr
        calls = _apt_calls(machine)
        assert calls[0].endswith("update -qq")
        assert calls[1].endswith(f"openjdk-17-jdk-headless {RUST_PACKAGES}")
        assert "installed: openjdk-17-jdk-headless" in out.stderr
    else:
        assert out.returncode == 1
        assert out.stderr.strip().splitlines() == [
            "prereqs: missing: Java 17, cargo >= 1.95; as root run: apt-get update && "
            f"apt-get install -y openjdk-17-jdk-headless {RUST_PACKAGES}"
        ]
        assert _apt_calls(machine) == []


def test_a_machine_that_has_everything_is_left_alone(machine: Path) -> None:
    _tool(machine / "bin", "java", """echo 'openjdk version "17.0.15" 2025-04-15' >&2""")
    _tool(machine / "bin", "cargo", "echo 'cargo 1.95.0 (f2932f4ec 2026-02-21)'")
    out = _run(machine)
    assert out.returncode == 0, out.stderr
    assert "all there" in out.stderr
    assert _apt_calls(machine) == []


def test_missing_maven_is_named(machine: Path) -> None:
    _tool(machine / "bin", "java", """echo 'openjdk version "21.0.1" 2023-10-17' >&2""")
    _tool(machine / "bin", "cargo", "echo 'cargo 1.96.0'")
    (machine / "bin" / "mvn").unlink()
    out = _run(machine)
    if os.geteuid() == 0:
        assert out.returncode == 0, out.stderr
        assert _apt_calls(machine)[-1].endswith("--no-install-recommends maven")
    else:
        assert out.returncode == 1
        assert "missing: Maven; as root run: apt-get update && apt-get install -y maven" in (
            out.stderr
        )
