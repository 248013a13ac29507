"""Tests that need a program of the machine (sshd, shellcheck, ssh) ask for it here.

Locally a missing program skips the test with the command that installs it. Under
CI=true it fails instead: `.ci/run` installs every tool the tests use, so a skip
there would hide a test that never ran.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def require_tool(name: str, install_hint: str, *, path: Path | None = None) -> str:
    """The program's path; skip (locally) or fail (CI=true) when it is missing.

    `path` pins where the program must be (sshd is not on PATH for non-root users);
    otherwise it is looked up on PATH.
    """
    found = str(path) if path is not None and path.exists() else None
    if path is None:
        found = shutil.which(name)
    if found is not None:
        return found
    message = f"no {name} on this machine: {install_hint}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a test never skips for a missing tool)", pytrace=False)
    pytest.skip(message)
