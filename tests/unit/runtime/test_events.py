import json
import uuid

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.runtime.events import (
    MAX_EVENT_BYTES,
    MAX_TOKENS,
    Rejection,
    TokenEvent,
    encode_event,
    event_ts,
    parse_event,
)

pytestmark = pytest.mark.unit


def valid(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "v": 1,
        "event_id": str(uuid.uuid4()),
        "ts": 1795729196.69,
        "model": "llama-3.1-8b",
        "gpu": 0,
        "node": "vm3",
        "prompt_tokens": 128,
        "completion_tokens": 64,
    }
    event.update(overrides)
    return event


def raw(event: object) -> bytes:
    return json.dumps(event).encode()


def test_valid_event_parses_with_optional_fields() -> None:
    parsed = parse_event(raw(valid(latency_ms=812.5, producer="p1", gpu="GPU-701e")))
    assert isinstance(parsed, TokenEvent)
    assert parsed.total_tokens == 192
    assert parsed.gpu == "GPU-701e"
    assert parsed.latency_ms == 812.5


def test_rfc3339_timestamp_becomes_unix_seconds() -> None:
    parsed = parse_event(raw(valid(ts="2026-11-26T21:39:56.5+00:00")))
    assert isinstance(parsed, TokenEvent)
    assert event_ts(parsed) == pytest.approx(1795729196.5)
    zulu = parse_event(raw(valid(ts="2026-11-26T21:39:56.5Z")))
    assert isinstance(zulu, TokenEvent)
    assert event_ts(zulu) == pytest.approx(1795729196.5)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"\xff\xfe not json", "not_json"),
        (b'{"v": 1,', "not_json"),
        (b"[1, 2]", "not_object"),
        (b'"a string"', "not_object"),
        (b"42", "not_object"),
        (raw(valid(v=3)), "unsupported_version"),  # v2 exists: test_events_v2.py
        (raw({k: v for k, v in valid().items() if k != "v"}), "unsupported_version"),
        (raw({k: v for k, v in valid().items() if k != "model"}), "missing_field"),
        (raw(valid(extra="x")), "unknown_field"),
        (raw(valid(prompt_tokens=-1)), "invalid_field"),
        (raw(valid(completion_tokens=MAX_TOKENS + 1)), "invalid_field"),
        (raw(valid(prompt_tokens=10**30)), "invalid_field"),
        (raw(valid(prompt_tokens="12")), "invalid_field"),
        (raw(valid(prompt_tokens=1.5)), "invalid_field"),
        (raw(valid(prompt_tokens=True)), "invalid_field"),
        (raw(valid(event_id="not-a-uuid")), "invalid_field"),
        (raw(valid(ts="yesterday")), "invalid_field"),
        (raw(valid(ts="2026-11-26T21:39:56")), "invalid_field"),
        (raw(valid(ts=1795729196690)), "invalid_field"),
        (raw(valid(ts=-5)), "invalid_field"),
        (raw(valid(model="")), "invalid_field"),
        (raw(valid(gpu=None)), "invalid_field"),
        (raw(valid(latency_ms=-3)), "invalid_field"),
        (b"{" + b" " * MAX_EVENT_BYTES + b"}", "too_large"),
    ],
)
def test_bad_input_is_rejected_with_its_reason(payload: bytes | None, reason: str) -> None:
    result = parse_event(payload)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert result.detail


@given(st.binary(max_size=512))
def test_no_bytes_can_raise(payload: bytes) -> None:
    assert isinstance(parse_event(payload), TokenEvent | Rejection)


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=1000))
def test_no_bytes_inside_a_string_can_raise(garbage: bytes, where: int) -> None:
    # Reliability case 4: a corrupted byte inside a string raised UnicodeDecodeError.
    body = raw(valid(model="m" * 32))
    start = body.index(b"m" * 32) + where % 32
    corrupted = body[:start] + garbage + body[start:]
    assert isinstance(parse_event(corrupted), TokenEvent | Rejection)


@pytest.mark.parametrize(
    "payload",
    [b'{"\xff": 1}', raw(valid(model="mm")).replace(b"mm", b"\xff\xfe")],
)
def test_invalid_utf8_in_a_string_is_not_json(payload: bytes) -> None:
    result = parse_event(payload)
    assert isinstance(result, Rejection)
    assert result.reason == "not_json"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_no_json_value_can_raise(value: object) -> None:
    assert isinstance(parse_event(msgspec.json.encode(value)), TokenEvent | Rejection)


def test_encode_then_parse_round_trips() -> None:
    first = parse_event(raw(valid()))
    assert isinstance(first, TokenEvent)
    assert parse_event(encode_event(first)) == first
