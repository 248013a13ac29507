import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.runtime.reading_checks import CLAMPED, MAX_POWER_W, RANGES, check_sample
from gpucost.runtime.sample_wire import SampleRejection, decode_sample, encode_sample
from gpucost.runtime.samples import GpuSample

pytestmark = pytest.mark.unit

T = 1_780_000_000.0


def sample(**readings: float | int | None) -> GpuSample:
    base: dict[str, float | int | None] = {
        "power_w": 300.0,
        "energy_j": 1e6,
        "gpu_util_pct": 50.0,
        "mem_util_pct": 20.0,
        "mem_used_bytes": 1 << 30,
        "mem_total_bytes": 141 << 30,
        "temp_c": 40.0,
        "sm_clock_mhz": 1980.0,
    }
    return GpuSample(t=T, gpu_index=0, source="seed", **{**base, **readings})  # type: ignore[arg-type]


def test_a_good_sample_passes_unchanged() -> None:
    good = sample()
    checked = check_sample(good)
    assert checked.sample is good
    assert (checked.dropped, checked.clamped, checked.refused) == ((), (), None)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", ["power_w", "energy_j", "temp_c", "sm_clock_mhz", "gpu_util_pct"])
def test_nan_and_infinite_readings_are_dropped_and_the_others_kept(name: str, bad: float) -> None:
    checked = check_sample(sample(**{name: bad}))
    assert checked.sample is not None
    assert getattr(checked.sample, name) is None
    assert checked.dropped == (name,)
    assert checked.sample.power_w == (None if name == "power_w" else 300.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("power_w", -1.0),
        ("power_w", MAX_POWER_W + 1),
        ("energy_j", -5.0),
        ("temp_c", 1e4),
        ("sm_clock_mhz", -1.0),
        ("mem_used_bytes", -1),
    ],
)
def test_out_of_range_readings_are_dropped(name: str, value: float) -> None:
    checked = check_sample(sample(**{name: value}))
    assert checked.sample is not None
    assert getattr(checked.sample, name) is None
    assert checked.dropped == (name,)


@pytest.mark.parametrize(("value", "clamped_to"), [(100.4, 100.0), (-0.5, 0.0), (1e9, 100.0)])
def test_utilisation_is_clamped_into_0_100_and_counted(value: float, clamped_to: float) -> None:
    checked = check_sample(sample(gpu_util_pct=value, mem_util_pct=value))
    assert checked.sample is not None
    assert checked.sample.gpu_util_pct == checked.sample.mem_util_pct == clamped_to
    assert checked.clamped == ("gpu_util_pct", "mem_util_pct")
    assert checked.dropped == ()


def test_the_edges_of_each_range_are_kept() -> None:
    edges = {name: low for name, (low, _high) in {**RANGES, **CLAMPED}.items()}
    assert check_sample(sample(**edges)).dropped == ()
    edges = {name: high for name, (_low, high) in {**RANGES, **CLAMPED}.items()}
    assert check_sample(sample(**edges)).dropped == ()


@pytest.mark.parametrize(
    ("t", "index", "why"),
    [
        (math.nan, 0, "bad_time"),
        (1.0, 0, "bad_time"),
        (5e9, 0, "bad_time"),
        (T, -1, "bad_gpu_index"),
    ],
)
def test_a_broken_time_or_index_refuses_the_whole_sample(t: float, index: int, why: str) -> None:
    checked = check_sample(GpuSample(t=t, gpu_index=index, source="nvml", power_w=10.0))
    assert checked.sample is None
    assert checked.refused == why


readings = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64))


@given(
    power=readings,
    energy=readings,
    util=readings,
    mem_util=readings,
    temp=readings,
    clock=readings,
    used=st.one_of(st.none(), st.integers(min_value=-(2**70), max_value=2**70)),
)
def test_whatever_a_source_reads_the_checked_sample_is_accepted_by_the_processor(
    power: float | None,
    energy: float | None,
    util: float | None,
    mem_util: float | None,
    temp: float | None,
    clock: float | None,
    used: int | None,
) -> None:
    raw = sample(
        power_w=power,
        energy_j=energy,
        gpu_util_pct=util,
        mem_util_pct=mem_util,
        temp_c=temp,
        sm_clock_mhz=clock,
        mem_used_bytes=used,
    )
    checked = check_sample(raw)
    assert checked.sample is not None
    decoded = decode_sample(encode_sample(checked.sample, "node-a"))
    assert not isinstance(decoded, SampleRejection), decoded
    _node, back = decoded
    for name in ("gpu_util_pct", "mem_util_pct"):
        value = getattr(back, name)
        assert value is None or 0.0 <= value <= 100.0
    assert back.power_w is None or 0.0 <= back.power_w <= MAX_POWER_W
    # Every reading that changed is named, once.
    changed = {n for n in RANGES | CLAMPED if getattr(raw, n) != getattr(checked.sample, n)}
    assert changed == set(checked.dropped) | set(checked.clamped)
