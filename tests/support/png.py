"""Checks on a PNG file without an image library: signature and IHDR size."""

from __future__ import annotations

import struct
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG; fails the test if the file is not one."""
    data = path.read_bytes()
    assert data[:8] == SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR", f"{path} has no IHDR chunk first"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def assert_sensible_png(path: Path) -> None:
    """1200×700 and more than a blank canvas (a blank one compresses to a few KB)."""
    assert png_size(path) == (1200, 700)
    assert 20_000 < path.stat().st_size < 2_000_000
