import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpucost.runtime.ratelimit import TokenBucket

pytestmark = pytest.mark.unit

SLACK = 1e-6  # float refills; the laws are exact up to this


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


rates = st.floats(min_value=0.1, max_value=200_000, allow_nan=False)


@given(
    rate=rates,
    burst_s=st.floats(min_value=0.0, max_value=2.0),
    steps=st.lists(
        st.tuples(st.floats(min_value=0, max_value=5), st.integers(min_value=0, max_value=10**6)),
        max_size=200,
    ),
)
def test_never_releases_more_than_rate_times_t_plus_burst(
    rate: float, burst_s: float, steps: list[tuple[float, int]]
) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, burst=max(1.0, rate * burst_s), clock=clock)
    released = 0
    for dt, most in steps:
        clock.now += dt
        got = bucket.take(most)
        assert 0 <= got <= most
        released += got
        assert released <= rate * (clock.now - 1000.0) + bucket.burst + SLACK


@settings(max_examples=200)
@given(
    rate=rates,
    burst_s=st.floats(min_value=0.0, max_value=1.0),
    oversleeps=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=300),
)
def test_a_greedy_caller_never_falls_more_than_one_behind(
    rate: float, burst_s: float, oversleeps: list[float]
) -> None:
    # The producer's loop: take all there is, then sleep for delay(); the scheduler may
    # oversleep, by at most what the bucket can hold beyond one token.
    clock = FakeClock()
    bucket = TokenBucket(rate, burst=max(1.0, rate * burst_s), clock=clock)
    released = 0
    for fraction in oversleeps:
        released += bucket.take(10**9)
        t = clock.now - 1000.0
        assert rate * t - 1 - SLACK <= released <= rate * t + bucket.burst + SLACK
        clock.now += bucket.delay() + fraction * (bucket.burst - 1) / rate


def test_fifty_per_second_for_sixty_seconds_within_one_percent() -> None:
    clock = FakeClock()
    bucket = TokenBucket(50, clock=clock)
    released = 0
    while clock.now - 1000.0 < 60.0:
        released += bucket.take(10**9)
        clock.now += bucket.delay() + 0.0007  # a typical oversleep
    assert abs(released - 3000) <= 30


def test_high_rates_release_in_bursts_not_one_per_wakeup() -> None:
    clock = FakeClock()
    bucket = TokenBucket(20_000, clock=clock)
    released = wakeups = 0
    while clock.now - 1000.0 < 1.0:
        released += bucket.take(10**9)
        wakeups += 1
        clock.now += max(bucket.delay(), 0.001)  # sleeps shorter than 1 ms do not happen
    assert released >= 19_999
    assert wakeups <= 1_001


def test_take_honours_most_and_delay_counts_down() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=5, clock=clock)
    assert bucket.take(3) == 1  # starts with one token
    assert bucket.take(3) == 0
    assert bucket.delay() == pytest.approx(0.1)
    clock.now += 0.05
    assert bucket.delay() == pytest.approx(0.05)
    clock.now += 10
    assert bucket.take(100) == 5  # capped at burst


def test_a_clock_stepping_back_takes_nothing_away() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=5, clock=clock)
    clock.now -= 100
    assert bucket.take(1) == 1


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (float("nan"), None), (1, 0.5)])
def test_rejects_nonsense(rate: float, burst: float | None) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate, burst=burst)
