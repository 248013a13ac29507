import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.runtime.documents import event_document, event_key, window_id_range, window_of
from gpucost.runtime.events import TokenEvent, encode_event, parse_event

pytestmark = pytest.mark.unit


def make(ts: float, gpu: int | str = 0) -> TokenEvent:
    event = TokenEvent(
        v=1,
        event_id=uuid.UUID(int=7, version=4),
        ts=ts,
        model="m",
        gpu=gpu,
        node="n",
        prompt_tokens=3,
        completion_tokens=4,
    )
    parsed = parse_event(encode_event(event))
    assert isinstance(parsed, TokenEvent)
    return parsed


def in_range(key: str, bounds: dict[str, str]) -> bool:
    return bounds["$gte"] <= key < bounds["$lt"]


@given(
    ts=st.floats(min_value=946_684_800, max_value=4_000_000_000, allow_nan=False),
    window_ms=st.sampled_from([1, 100, 250, 1000, 2000, 10_000, 60_000, 3_600_000]),
)
def test_an_events_id_lies_in_its_windows_range_and_no_other(ts: float, window_ms: int) -> None:
    window_s = window_ms / 1000
    doc = event_document(make(ts), "0", window_s, partition=0, offset=0, received_at=0.0)
    start = doc["window_start"]
    assert in_range(doc["_id"], window_id_range("0", start, window_s))
    assert not in_range(doc["_id"], window_id_range("0", start - window_s, window_s))
    assert not in_range(doc["_id"], window_id_range("0", start + window_s, window_s))
    assert start <= ts < start + window_s + 0.001


def test_same_event_same_id_and_other_gpus_never_share_a_range() -> None:
    first = event_document(make(1795790671.5), "0", 10, partition=1, offset=5, received_at=1)
    again = event_document(make(1795790671.5), "0", 10, partition=2, offset=9, received_at=2)
    assert first["_id"] == again["_id"]
    assert first["window_start"] == 1795790670.0
    for other in ("00", "0.1", "1", "0-a", "GPU-0"):
        assert not in_range(
            event_key(other, 1795790671500, "x"), window_id_range("0", 1795790670.0, 10)
        )


def test_window_boundaries_are_exact_in_milliseconds() -> None:
    assert window_of(1795790680000, 10) == 1795790680.0
    assert window_of(1795790679999, 10) == 1795790670.0
    assert window_of(1795790670100, 0.1) == pytest.approx(1795790670.1)


def test_a_gpu_id_cannot_carry_the_separator() -> None:
    raw = encode_event(make(1795790671.5)).replace(b'"gpu":0', b'"gpu":"0|01795790675000"')
    assert not isinstance(parse_event(raw), TokenEvent)
