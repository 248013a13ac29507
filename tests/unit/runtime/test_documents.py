import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.runtime.documents import event_document, window_filter, window_of
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


@given(
    ts=st.floats(min_value=946_684_800, max_value=4_000_000_000, allow_nan=False),
    window_ms=st.sampled_from([1, 100, 250, 1000, 2000, 10_000, 60_000, 3_600_000]),
)
def test_an_event_lands_in_the_window_holding_its_ts(ts: float, window_ms: int) -> None:
    window_s = window_ms / 1000
    doc = event_document(make(ts), "0", window_s, partition=0, offset=0, received_at=0.0)
    start = doc["window_start"]
    assert start <= ts < start + window_s + 0.001
    assert window_filter("n", "0", start) == {"node": "n", "gpu": "0", "window_start": start}


def test_the_same_event_is_the_same_document_id() -> None:
    first = event_document(make(1795790671.5), "0", 10, partition=1, offset=5, received_at=1)
    again = event_document(make(1795790671.5), "0", 10, partition=2, offset=9, received_at=2)
    assert first["_id"] == again["_id"] == str(uuid.UUID(int=7, version=4))
    assert first["window_start"] == again["window_start"] == 1795790670.0


def test_window_boundaries_are_exact_in_milliseconds() -> None:
    assert window_of(1795790680000, 10) == 1795790680.0
    assert window_of(1795790679999, 10) == 1795790670.0
    assert window_of(1795790670100, 0.1) == pytest.approx(1795790670.1)
