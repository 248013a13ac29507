"""The on-disk spool: durable, ordered, bounded, private."""

import stat
from pathlib import Path

import pytest

from gpucost.runtime.proxy.spool import SPOOL_NAME, Spool

pytestmark = pytest.mark.unit


def records(n: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    return [(f'{{"n":{i}}}'.encode(), b"0") for i in range(start, start + n)]


def test_append_peek_remove_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(records(5))
    assert len(spool) == 5
    assert spool.peek(2) == records(2)
    spool.remove_head(2)
    assert spool.peek(10) == records(3, start=2)


def test_survives_a_restart_without_the_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(records(5))
    spool.remove_head(3)
    spool.close()
    again = Spool(tmp_path, max_bytes=1 << 20)
    assert again.peek(10) == records(2, start=3)
    assert again.size == sum(len(k) + len(v) + 2 for v, k in records(2, start=3))


def test_emptied_spool_starts_afresh(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(records(3))
    spool.remove_head(3)
    assert (tmp_path / SPOOL_NAME).stat().st_size == 0
    spool.append(records(1, start=7))
    spool.close()
    assert Spool(tmp_path, max_bytes=1 << 20).peek(10) == records(1, start=7)


def test_bound_drops_the_newest_and_counts(tmp_path: Path) -> None:
    line = len(records(1)[0][0]) + 3
    spool = Spool(tmp_path, max_bytes=line * 3)
    assert spool.append(records(5)) == 2
    assert spool.dropped == 2
    assert spool.peek(10) == records(3)


def test_a_torn_last_line_is_not_an_event(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(records(2))
    spool.close()
    with (tmp_path / SPOOL_NAME).open("ab") as spooled:
        spooled.write(b'0\t{"n":')
    assert Spool(tmp_path, max_bytes=1 << 20).peek(10) == records(2)


def test_files_are_private(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=1 << 20)
    spool.append(records(2))
    spool.remove_head(1)
    for path in (tmp_path / "spool").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
