"""What the container image installs: gpucost's requirements less the CLI's."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from gpucost.errors import OPTIONAL_PACKAGES
from gpucost.remote.deploy import CLI_ONLY, REPO_ROOT, runtime_requirements

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
DEPENDENCIES: list[str] = PYPROJECT["project"]["dependencies"]


def _project(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None
    return match.group(0).lower()


def _wheel(tmp_path: Path, *requires: str) -> Path:
    wheel = tmp_path / "gpucost-0.1.0-py3-none-any.whl"
    metadata = "Metadata-Version: 2.3\nName: gpucost\nVersion: 0.1.0\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("gpucost-0.1.0.dist-info/METADATA", metadata)
    return wheel


def test_the_cli_only_packages_and_extras_stay_out(tmp_path: Path) -> None:
    wheel = _wheel(
        tmp_path,
        "pydantic>=2.7",
        "paramiko>=3.4",
        "boto3>=1.34",
        "matplotlib>=3.8",
        "pytest>=8; extra == 'dev'",
        "tomli>=2; python_version < '3.11'",
    )
    assert runtime_requirements(wheel) == ["pydantic>=2.7", "tomli>=2; python_version < '3.11'"]


def test_pip_install_gpucost_carries_what_every_command_needs() -> None:
    names = {_project(d) for d in DEPENDENCIES}
    assert names >= CLI_ONLY
    # The one-line hints name the same floors as pyproject.toml.
    assert set(OPTIONAL_PACKAGES.values()) <= set(DEPENDENCIES)


def test_the_runtime_never_imports_the_cli_only_packages() -> None:
    code = (
        "import sys, gpucost.runtime.processor_main, gpucost.runtime.producer_main; "
        f"print(sorted(m for m in {sorted(CLI_ONLY)!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
