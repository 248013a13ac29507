import pytest

from gpucost.runtime.samples import GpuSample
from gpucost.runtime.windows import SampleBuffer, WindowSchedule

pytestmark = pytest.mark.unit


def sample(t: float) -> GpuSample:
    return GpuSample(t=t, gpu_index=0, source="seed", power_w=100.0, energy_j=t * 100)


def test_window_is_due_only_after_its_end_plus_grace() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    schedule.mark_events({("0", 100.0)})
    assert schedule.due(111.9) == []
    assert schedule.due(112.0) == [("0", 100.0)]
    schedule.claim(("0", 100.0))
    schedule.done(("0", 100.0))
    assert schedule.due(200.0) == []


def test_a_late_event_makes_a_written_window_due_again() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    schedule.mark_events({("0", 100.0)})
    schedule.claim(("0", 100.0))
    schedule.done(("0", 100.0))
    schedule.mark_events({("0", 100.0)})
    assert schedule.due(500.0) == [("0", 100.0)]


def test_sampled_gpus_get_every_window_once_even_without_events() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    schedule.mark_sampled("0", 103.0)
    schedule.mark_sampled("0", 125.0)  # later samples do not move the start
    due = schedule.due(133.0)
    assert due == [("0", 100.0), ("0", 110.0), ("0", 120.0)]
    for key in due:
        schedule.done(key)
    assert schedule.due(133.0) == []
    assert schedule.due(142.0) == [("0", 130.0)]


def test_a_failed_write_keeps_the_window_due() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=0)
    schedule.mark_sampled("0", 100.0)
    assert schedule.due(120.0)[0] == ("0", 100.0)
    # Nothing marked done: the same windows are due at the next tick.
    assert schedule.due(120.0) == [("0", 100.0), ("0", 110.0)]


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
    schedule.mark_events({("0", 100.0)})
    (key,) = schedule.due(200.0)
    schedule.claim(key)
    schedule.mark_events({key})  # an insert finished during the write
    schedule.done(key)
    assert schedule.due(200.0) == [key]


def test_while_a_backlog_drains_windows_close_by_event_time_not_the_clock() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    schedule.mark_events({("0", 100.0)})
    # Long past by the clock, but the consumer is behind and has seen nothing newer.
    assert schedule.due(500.0, caught_up=False, event_time=105.0) == []
    # The backlog has moved past the window: its events are all in.
    assert schedule.due(500.0, caught_up=False, event_time=112.0) == [("0", 100.0)]
    # Caught up: the clock decides again.
    assert schedule.due(500.0, caught_up=True, event_time=105.0) == [("0", 100.0)]


def test_an_event_time_ahead_of_the_clock_closes_nothing_early() -> None:
    schedule = WindowSchedule(window_s=10, grace_s=2)
    schedule.mark_events({("0", 100.0)})
    assert schedule.due(105.0, caught_up=False, event_time=10_000.0) == []
