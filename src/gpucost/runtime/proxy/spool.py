"""A bounded, durable queue on disk for events the broker has not acknowledged.

One append-only file of JSON lines (one encoded event each) and a small `head` file
holding the byte offset of the first event not yet acknowledged. Appends are fsync'd
before they count, the head moves by an atomic replace, so a crash loses nothing that
was spooled and replays nothing twice that was acknowledged and marked. When every
event is out, both files are emptied. Both are mode 0600: events name tenants.

Bounded by bytes: an append that would pass the bound drops the new events (the oldest
are kept, so what replays stays in order) and counts them in `dropped`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from pathlib import Path

log = logging.getLogger(__name__)

SPOOL_NAME = "events.jsonl"
HEAD_NAME = "head"


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.dropped = 0
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._path = directory / SPOOL_NAME
        self._head_path = directory / HEAD_NAME
        self._head = self._read_head()
        # The live events, oldest first, as (value, key): the file is the durable copy.
        self._events: deque[tuple[bytes, bytes]] = deque()
        self._bytes = 0
        self._load()
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "ab")

    def __len__(self) -> int:
        return len(self._events)

    @property
    def size(self) -> int:
        """Bytes of the live events on disk."""
        return self._bytes

    def append(self, events: list[tuple[bytes, bytes]]) -> int:
        """Spool (value, key) pairs durably, oldest first; returns how many were dropped."""
        kept: list[tuple[bytes, bytes]] = []
        lines = []
        for value, key in events:
            line = _line(value, key)
            if self._bytes + len(line) > self.max_bytes:
                continue
            self._bytes += len(line)
            kept.append((value, key))
            lines.append(line)
        dropped = len(events) - len(kept)
        if lines:
            self._file.write(b"".join(lines))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._events.extend(kept)
        if dropped:
            self.dropped += dropped
            log.error(
                "spool full: events dropped",
                extra={
                    "dropped": dropped,
                    "total": self.dropped,
                    "max_bytes": self.max_bytes,
                },
            )
        return dropped

    def peek(self, most: int) -> list[tuple[bytes, bytes]]:
        return [self._events[i] for i in range(min(most, len(self._events)))]

    def remove_head(self, count: int) -> None:
        """The oldest `count` events were acknowledged: forget them, durably."""
        for _ in range(min(count, len(self._events))):
            value, key = self._events.popleft()
            size = len(_line(value, key))
            self._head += size
            self._bytes -= size
        if self._events:
            self._write_head()
            return
        # Everything is out: start both files afresh rather than grow forever. The head
        # goes to 0 first: a crash in between replays acknowledged events (the processor
        # stores each event_id once) rather than skipping new ones.
        self._head = 0
        self._write_head()
        self._file.truncate(0)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()

    def _load(self) -> None:
        if not self._path.exists():
            return
        os.chmod(self._path, 0o600)
        if self._head > self._path.stat().st_size:
            self._head = 0
        with self._path.open("rb") as spooled:
            spooled.seek(self._head)
            for line in spooled:
                if not line.endswith(b"\n"):
                    # A torn last write (a crash mid-append): it was never acknowledged
                    # to anyone as spooled, so it is not an event.
                    break
                key, _, value = line.rstrip(b"\n").partition(b"\t")
                self._events.append((value, key))
                self._bytes += len(line)
        if self._events:
            log.info("spool holds events from before", extra={"events": len(self._events)})

    def _read_head(self) -> int:
        try:
            return int(self._head_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _write_head(self) -> None:
        tmp = self._head_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"{self._head}\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._head_path)


def _line(value: bytes, key: bytes) -> bytes:
    # An event is one line of JSON (msgspec writes no raw newline); the key is a GPU id,
    # which events.GpuId limits to characters without tabs or newlines.
    return key + b"\t" + value + b"\n"
