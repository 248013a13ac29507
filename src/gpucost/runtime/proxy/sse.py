"""Server-sent events, cut from a byte stream as it arrives: whole events out, nothing more held.

The proxy forwards a stream event by event (never the whole answer at once) and reads
each event's JSON on the way: the upstream's `usage`, and whether a token was streamed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

DONE: Final = "[DONE]"
_SEPARATORS: Final = (b"\r\n\r\n", b"\n\n", b"\r\r")


@dataclass(frozen=True, slots=True)
class SseEvent:
    raw: bytes
    """The event's bytes as received, blank-line terminator included: what is forwarded."""
    data: str | None
    """Its `data:` lines joined by newlines; None for an event without data (a comment)."""

    def json(self) -> dict[str, Any] | None:
        """The data as a JSON object, or None (no data, `[DONE]`, not an object)."""
        if self.data is None or self.data == DONE:
            return None
        try:
            value = json.loads(self.data)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


class SseParser:
    """Feed bytes in any cuts; get back each event once its terminating blank line is in."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk
        events: list[SseEvent] = []
        while True:
            end = _event_end(self._buffer)
            if end is None:
                return events
            raw, self._buffer = self._buffer[:end], self._buffer[end:]
            events.append(SseEvent(raw, _data_of(raw)))

    def flush(self) -> SseEvent | None:
        """What is left when the stream ends without a final blank line, as one event."""
        raw, self._buffer = self._buffer, b""
        return SseEvent(raw, _data_of(raw)) if raw else None


def _event_end(buffer: bytes) -> int | None:
    """Index just past the first event terminator in `buffer`, or None."""
    best: int | None = None
    for separator in _SEPARATORS:
        at = buffer.find(separator)
        if at >= 0 and (best is None or at + len(separator) < best):
            best = at + len(separator)
    return best


def _data_of(raw: bytes) -> str | None:
    lines = []
    for line in raw.decode("utf-8", errors="replace").splitlines():
        if line.startswith("data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(" ") else value)
    return "\n".join(lines) if lines else None
