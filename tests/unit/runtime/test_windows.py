import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpucost.runtime.cost import ts_ms, window_start_ms
from gpucost.runtime.documents import window_of
from gpucost.runtime.samples import GpuSample
from gpucost.runtime.windows import SampleBuffer, SampleReach, WindowSchedule

pytestmark = pytest.mark.unit


def sample(t: float) -> GpuSample:
    return GpuSample(t=t, gpu_index=0, source="seed", power_w=100.0, energy_j=t * 100)


def test_window_is_due_only_after_its_end_plus_grace() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    schedule.mark_events({("n", "0", 100000)})
    assert schedule.due(111.9) == []
    assert schedule.due(112.0) == [("n", "0", 100000)]
    schedule.claim(("n", "0", 100000))
    schedule.done(("n", "0", 100000))
    assert schedule.due(200.0) == []


def test_a_late_event_makes_a_written_window_due_again() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    schedule.mark_events({("n", "0", 100000)})
    schedule.claim(("n", "0", 100000))
    schedule.done(("n", "0", 100000))
    schedule.mark_events({("n", "0", 100000)})
    assert schedule.due(500.0) == [("n", "0", 100000)]


def test_sampled_gpus_get_every_window_once_even_without_events() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    schedule.mark_sampled(("n", "0"), 103.0)
    schedule.mark_sampled(("n", "0"), 125.0)  # later samples do not move the start
    due = schedule.due(133.0)
    assert due == [("n", "0", 100000), ("n", "0", 110000), ("n", "0", 120000)]
    for key in due:
        schedule.done(key)
    assert schedule.due(133.0) == []
    assert schedule.due(142.0) == [("n", "0", 130000)]


def test_a_failed_write_keeps_the_window_due() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=0)
    schedule.mark_sampled(("n", "0"), 100.0)
    assert schedule.due(120.0)[0] == ("n", "0", 100000)
    # Nothing marked done: the same windows are due at the next tick.
    assert schedule.due(120.0) == [("n", "0", 100000), ("n", "0", 110000)]


def test_buffer_keeps_order_trims_by_age_and_brackets_a_window() -> None:
    buffer = SampleBuffer(retention_s=30)
    for t in range(0, 60):
        buffer.add(sample(float(t)))
    buffer.add(sample(10.0))  # a step back in time adds nothing
    assert buffer.samples[0].t == 29.0
    assert buffer.samples[-1].t == 59.0
    around = buffer.around(40.0, 45.0)
    assert around[0].t == 39.0
    assert around[-1].t == 46.0
    assert buffer.covers(40.0, 50.0)
    assert not buffer.covers(0.0, 20.0)
    assert not buffer.covers(60.5, 70.0)


def test_events_landing_while_a_window_is_written_keep_it_due() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    schedule.mark_events({("n", "0", 100000)})
    (key,) = schedule.due(200.0)
    schedule.claim(key)
    schedule.mark_events({key})  # an insert finished during the write
    schedule.done(key)
    assert schedule.due(200.0) == [key]


def test_while_a_backlog_drains_windows_close_by_event_time_not_the_clock() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    schedule.mark_events({("n", "0", 100000)})
    # Long past by the clock, but the consumer is behind and has seen nothing newer.
    assert schedule.due(500.0, caught_up=False, event_time=105.0) == []
    # The backlog has moved past the window: its events are all in.
    assert schedule.due(500.0, caught_up=False, event_time=112.0) == [("n", "0", 100000)]
    # Caught up: the clock decides again.
    assert schedule.due(500.0, caught_up=True, event_time=105.0) == [("n", "0", 100000)]


def test_an_event_time_ahead_of_the_clock_closes_nothing_early() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    schedule.mark_events({("n", "0", 100000)})
    assert schedule.due(105.0, caught_up=False, event_time=10_000.0) == []


def test_windows_stay_closed_until_their_samples_arrive() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    gpu = ("n", "0")
    schedule.mark_sampled(gpu, 100.0)
    schedule.mark_events({("n", "0", 110_000)})
    # By the clock 100-110 and 110-120 are closed, but samples reached only 111.
    flowing = {gpu: SampleReach(111.0, stopped=False)}
    assert schedule.due(125.0, reach=flowing) == [("n", "0", 100_000)]
    # Samples that stopped: the window with events is written all the same.
    stopped = {gpu: SampleReach(111.0, stopped=True)}
    assert schedule.due(125.0, reach=stopped) == [("n", "0", 100_000), ("n", "0", 110_000)]


def test_idle_windows_are_charged_only_as_far_as_the_samples_reach() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    gpu = ("n", "0")
    schedule.mark_sampled(gpu, 100.0)
    # The agent went away at 131: 100, 110, 120 and the window holding 131; not after.
    due = schedule.due(10_000.0, reach={gpu: SampleReach(131.0, stopped=True)})
    assert [key[2] for key in due] == [100_000, 110_000, 120_000, 130_000]
    # Still flowing: the window holding the newest sample waits for the next one.
    due = schedule.due(10_000.0, reach={gpu: SampleReach(131.0, stopped=False)})
    assert [key[2] for key in due] == [100_000, 110_000, 120_000]


def test_events_of_a_gpu_never_sampled_wait_for_its_first_samples() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    schedule.mark_events({("n", "7", 100_000)})
    assert schedule.due(500.0, reach={}) == []
    stopped = SampleReach(-math.inf, stopped=True)
    assert schedule.due(500.0, reach={}, unknown=stopped) == [("n", "7", 100_000)]


def test_a_new_owner_starts_after_the_windows_written_before_it() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=0)
    gpu = ("n", "0")
    schedule.mark_sampled(gpu, 100.0)
    schedule.start_sampled_after(gpu, 120_000)
    assert schedule.due(150.0) == [("n", "0", 130_000), ("n", "0", 140_000)]


def test_forgotten_gpus_have_no_windows_due() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=0)
    schedule.mark_sampled(("a", "0"), 100.0)
    schedule.mark_events({("a", "0", 100_000), ("b", "0", 100_000)})
    schedule.forget({("a", "0")})
    assert schedule.due(150.0) == [("b", "0", 100_000)]


@settings(max_examples=300)
@given(
    width_ms=st.one_of(st.sampled_from([300, 3300, 100, 7, 10_000]), st.integers(1, 600_000)),
    origin=st.floats(1e9, 2e9),
    span=st.integers(1, 40),
    offsets=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=20),
)
def test_idle_windows_and_event_windows_are_one_set_of_keys(
    width_ms: int, origin: float, span: int, offsets: list[float]
) -> None:
    """For any whole-ms width, the windows a sampled GPU is charged for tile time with
    no gap and no overlap, and every event falls in one of them: a window can never be
    keyed two ways (and charged twice)."""
    window_s = width_ms / 1000
    schedule = WindowSchedule(window_s=window_s, grace_s=0)
    gpu = ("n", "0")
    schedule.mark_sampled(gpu, origin)
    end = origin + span * window_s
    # One window more than the span: `end` itself is float arithmetic, and may fall a
    # hair short of the boundary it stands for.
    keys = schedule.due(end + 2 * window_s)
    starts = [k[2] for k in keys]
    assert starts == sorted(set(starts))
    assert all(b - a == width_ms for a, b in itertools.pairwise(starts))
    assert starts[0] <= ts_ms(origin) < starts[0] + width_ms
    for offset in offsets:
        ts = origin + offset * span * window_s
        assert window_start_ms(ts, window_s) in starts
        # Documents store seconds; the processor keys by round(seconds * 1000).
        assert round(window_of(ts_ms(ts), window_s) * 1000) == window_start_ms(ts, window_s)
