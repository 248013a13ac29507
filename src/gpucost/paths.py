"""Where the files gpucost pushes to hosts live: in a checkout, `scripts/` at the top;
in an installed wheel, the same tree packaged as `gpucost/_scripts`."""

from __future__ import annotations

from pathlib import Path
from typing import Final

_PACKAGE: Final = Path(__file__).resolve().parent


def scripts_dir() -> Path:
    packaged = _PACKAGE / "_scripts"
    return packaged if packaged.is_dir() else _PACKAGE.parents[1] / "scripts"
