import pytest

from gpucost.errors import InputError
from gpucost.runtime.events import TokenEvent, encode_event, parse_event
from gpucost.runtime.trace import RecordedEvent, default_seed_path, load_trace
from gpucost.runtime.trace_events import ReplaySource, replay_source, schedule

pytestmark = pytest.mark.unit

START = 1_900_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def recorded(ts_end: float, gpu: int = 0, prompt: int = 128) -> RecordedEvent:
    return RecordedEvent(
        event_id="b7ec0e5a-266d-4c2e-bae1-711df9f13553",
        ts_end=ts_end,
        gpu_index=gpu,
        prompt_tokens=prompt,
        completion_tokens=64,
        model="llama-1.10b-random",
        ts_start=ts_end - 2.0,
    )


def source(events: list[RecordedEvent], clock: FakeClock, loop: bool = False) -> ReplaySource:
    return ReplaySource(events, node="vm4", producer="mark", loop=loop, seed=1, clock=clock)


def test_events_are_shifted_to_now_in_order() -> None:
    clock = FakeClock()
    # Out of order on purpose: the replay sorts by ts_end.
    replay = source([recorded(1000.0, 0, 1), recorded(1003.5, 1, 3), recorded(1001.0, 0, 2)], clock)
    first = replay.due(10)
    assert [e.prompt_tokens for e in first] == [1]
    assert first[0].ts == START
    assert replay.wait() == pytest.approx(1.0)
    clock.now += 1.0
    second = replay.due(10)
    assert [(e.prompt_tokens, e.ts) for e in second] == [(2, START + 1.0)]
    clock.now += 10.0
    last = replay.due(10)
    assert [(e.prompt_tokens, e.ts, e.gpu) for e in last] == [(3, START + 3.5, 1)]
    assert replay.wait() is None
    assert replay.due(10) == []


def test_published_events_are_valid_with_fresh_ids_and_recorded_fields() -> None:
    clock = FakeClock()
    replay = source([recorded(1000.0 + i) for i in range(20)], clock)
    clock.now += 100
    events = replay.due(100)
    assert len(events) == 20
    assert len({e.event_id for e in events}) == 20
    for event in events:
        assert isinstance(parse_event(encode_event(event)), TokenEvent)
        assert (event.model, event.node, event.producer) == ("llama-1.10b-random", "vm4", "mark")
        assert event.latency_ms == 2000.0


def test_most_bounds_a_batch_without_losing_events() -> None:
    clock = FakeClock()
    replay = source([recorded(1000.0)] * 5, clock)
    assert len(replay.due(2)) == 2
    assert len(replay.due(2)) == 2
    assert len(replay.due(2)) == 1
    assert replay.wait() is None


def test_looping_continues_the_pace_across_the_seam() -> None:
    clock = FakeClock()
    replay = source([recorded(1000.0), recorded(1002.0), recorded(1004.0)], clock, loop=True)
    clock.now += 12.0
    events = replay.due(100)
    # Period is the span plus one mean gap: 6 s, so passes start at 0, 6, 12.
    assert [e.ts - START for e in events] == [0, 2, 4, 6, 8, 10, 12]
    assert replay.wait() == pytest.approx(2.0)


def test_period_and_empty_trace() -> None:
    assert schedule([recorded(5.0)])[1] == 1.0
    with pytest.raises(InputError, match="no events"):
        schedule([])


def test_the_shipped_recording_replays_all_its_events() -> None:
    trace = load_trace(default_seed_path())
    clock = FakeClock()
    replay = ReplaySource(trace.events, node="n", clock=clock)
    first_end = min(e.ts_end for e in trace.events)
    clock.now += max(e.ts_end for e in trace.events) - first_end
    events = replay.due(10_000)
    assert len(events) == len(trace.events) == 40
    assert sum(e.total_tokens for e in events) == sum(e.total_tokens for e in trace.events)
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert replay.wait() is None


def test_a_missing_trace_is_one_input_error() -> None:
    with pytest.raises(InputError, match="not found"):
        replay_source("/nonexistent/trace.json", node="n")
