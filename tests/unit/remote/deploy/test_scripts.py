"""The role scripts are clean under shellcheck and follow the house rules."""

from __future__ import annotations

import subprocess

import pytest

from gpucost.remote.steps import SCRIPTS_DIR
from support.tools import require_tool

SCRIPTS = sorted(SCRIPTS_DIR.glob("*.sh"))


def test_shellcheck_clean() -> None:
    shellcheck = require_tool("shellcheck", "apt-get install -y shellcheck")
    out = subprocess.run(
        [shellcheck, "-x", *map(str, SCRIPTS)],
        cwd=SCRIPTS_DIR.parents[1],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s.name != "lib.sh"], ids=str)
def test_strict_mode(script: object) -> None:
    from pathlib import Path

    text = Path(str(script)).read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
