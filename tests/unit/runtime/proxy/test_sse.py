"""SSE cut from a byte stream: whole events only, whatever the chunking."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.runtime.proxy.sse import SseParser

pytestmark = pytest.mark.unit

STREAM = (
    b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
    b": a comment\n\n"
    b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\r\n\r\n'
    b"data: [DONE]\n\n"
)


def test_events_and_their_data() -> None:
    events = SseParser().feed(STREAM)
    assert [e.data for e in events] == [
        '{"choices":[{"delta":{"content":"a"}}]}',
        None,
        '{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}',
        "[DONE]",
    ]
    assert b"".join(e.raw for e in events) == STREAM
    assert events[2].json() == {
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    assert events[3].json() is None


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM)), max_size=20))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    parser = SseParser()
    bounds = sorted(set(cuts))
    events = []
    start = 0
    for end in [*bounds, len(STREAM)]:
        events += parser.feed(STREAM[start:end])
        start = end
    assert parser.flush() is None
    assert b"".join(e.raw for e in events) == STREAM
    assert len(events) == 4


def test_an_event_is_held_until_its_blank_line() -> None:
    parser = SseParser()
    assert parser.feed(b'data: {"a": 1}\n') == []
    (event,) = parser.feed(b"\n")
    assert event.json() == {"a": 1}


def test_multiline_data_and_an_unterminated_tail() -> None:
    parser = SseParser()
    (event,) = parser.feed(b"data: one\ndata:two\n\n")
    assert event.data == "one\ntwo"
    assert parser.feed(b"data: tail") == []
    tail = parser.flush()
    assert tail is not None
    assert tail.data == "tail"
