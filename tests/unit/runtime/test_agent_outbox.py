import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.runtime.agent_outbox import DropSpan, Outbox, Pending

pytestmark = pytest.mark.unit


def item(i: int) -> Pending:
    return Pending(t=1000.0 + i, gpu_index=i % 2, value=str(i).encode())


def test_under_the_bound_nothing_is_dropped_and_order_is_kept() -> None:
    buffer = Outbox(5)
    for i in range(5):
        buffer.push(item(i))
    assert buffer.dropped == 0
    assert buffer.take_drops() is None
    assert [p.value for p in buffer.pop(10)] == [b"0", b"1", b"2", b"3", b"4"]


def test_past_the_bound_the_oldest_are_dropped_counted_and_their_span_reported() -> None:
    buffer = Outbox(3)
    for i in range(10):
        buffer.push(item(i))
    assert len(buffer) == 3
    assert buffer.dropped == 7
    assert buffer.take_drops() == DropSpan(count=7, first_t=1000.0, last_t=1006.0)
    assert buffer.take_drops() is None  # reported once
    assert [p.value for p in buffer.pop(3)] == [b"7", b"8", b"9"]
    buffer.push(item(10))
    assert buffer.take_drops() is None
    assert buffer.dropped == 7  # the total stays


def test_samples_put_back_go_first_and_are_the_first_dropped() -> None:
    buffer = Outbox(3)
    for i in (2, 3):
        buffer.push(item(i))
    buffer.push_front([item(0), item(1)])
    assert buffer.take_drops() == DropSpan(1, 1000.0, 1000.0)
    assert [p.value for p in buffer.pop(1)] == [b"1"]
    assert [p.value for p in buffer.pop(5)] == [b"2", b"3"]


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Outbox(0)


@given(limit=st.integers(1, 50), ops=st.lists(st.integers(0, 4), max_size=300))
def test_every_sample_is_kept_popped_or_counted_dropped(limit: int, ops: list[int]) -> None:
    buffer = Outbox(limit)
    pushed = popped = reported = 0
    for op in ops:
        if op == 0:
            popped += len(buffer.pop(2))
        elif op == 1 and (span := buffer.take_drops()) is not None:
            reported += span.count
            assert span.first_t <= span.last_t
        else:
            buffer.push(item(pushed))
            pushed += 1
        assert len(buffer) <= limit
    span = buffer.take_drops()
    reported += span.count if span else 0
    assert pushed == popped + len(buffer) + buffer.dropped
    assert reported == buffer.dropped
    # What is left is the newest, in order.
    left = [p.t for p in buffer.pop(limit)]
    assert left == sorted(left)
    assert not left or left[-1] == 1000.0 + pushed - 1
