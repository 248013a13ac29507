"""Generated bad payloads, each with the reason the processor must give it."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

from support.streams import event

TWO_MB = 2 * 1024 * 1024

Bad = tuple[str, bytes, str]
"""(kind, payload, expected reason)."""


def with_field(name: str, value: object) -> bytes:
    body = event()
    body[name] = value
    return json.dumps(body).encode()


def _wrong_type(rng: random.Random) -> Bad:
    field, value = rng.choice(
        [
            ("prompt_tokens", "120"),
            ("completion_tokens", 4.5),
            ("model", 5),
            ("gpu", [0]),
            ("ts", True),
            ("node", None),
            ("event_id", 12345),
            ("latency_ms", "fast"),
        ]
    )
    return "wrong_type", with_field(field, value), "invalid_field"


def _huge_or_negative(rng: random.Random) -> Bad:
    field, value = rng.choice(
        [
            ("prompt_tokens", -1),
            ("completion_tokens", -rng.randint(1, 10**6)),
            ("completion_tokens", 10**12),
            ("prompt_tokens", 10**30),
            ("ts", -5.0),
            ("ts", 1e300),
            ("latency_ms", 1e20),
            ("gpu", -3),
        ]
    )
    return "huge_or_negative", with_field(field, value), "invalid_field"


def _missing_field(rng: random.Random) -> Bad:
    body = event()
    del body[rng.choice(["event_id", "ts", "model", "gpu", "node", "prompt_tokens"])]
    return "missing_field", json.dumps(body).encode(), "missing_field"


def _unknown_version(rng: random.Random) -> Bad:
    version = rng.choice([0, 3, 4, 99, "1", None, 1.5])  # 1 and 2 exist
    return "unknown_version", json.dumps(event(v=version)).encode(), "unsupported_version"


def _not_object(rng: random.Random) -> Bad:
    value: Any = rng.choice([[1, 2, 3], "a string", 42, 3.14, None, True, [event()]])
    return "not_object", json.dumps(value).encode(), "not_object"


def _random_bytes(rng: random.Random) -> Bad:
    # A leading 0xff is never JSON, so the reason is known.
    return "random_bytes", b"\xff" + rng.randbytes(rng.randint(0, 300)), "not_json"


def _corrupted_event(rng: random.Random) -> Bad:
    """A valid event with random bytes inside a string: invalid UTF-8 within JSON."""
    raw = json.dumps(event(model="m" * 16)).encode()
    start = raw.index(b"m" * 16)
    garbage = bytes([0xFF, *rng.randbytes(7)])
    return "corrupted_event", raw[:start] + garbage + raw[start + 8 :], "not_json"


KINDS: list[Callable[[random.Random], Bad]] = [
    _wrong_type,
    _huge_or_negative,
    _missing_field,
    _unknown_version,
    _not_object,
    _random_bytes,
    _corrupted_event,
]


def bad_payloads(count: int, rng: random.Random) -> Iterator[Bad]:
    """`count` bad payloads of every kind in turn, one of them 2 MB and one empty."""
    yield "two_megabytes", b'{"pad": "' + b"x" * TWO_MB + b'"}', "too_large"
    yield "empty", b"", "empty"
    for i in range(count - 2):
        yield KINDS[i % len(KINDS)](rng)
