import statistics
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.errors import ConfigError
from gpucost.runtime.events import TokenEvent, encode_event, parse_event
from gpucost.runtime.ratelimit import TokenBucket
from gpucost.runtime.synthetic import MODELS, SyntheticEvents, SyntheticSource, _uuid4

pytestmark = pytest.mark.unit

NOW = 1_795_729_200.0


def make(n: int, **options: object) -> list[TokenEvent]:
    events = SyntheticEvents(node="vm4", producer="test", clock=lambda: NOW, **options)  # type: ignore[arg-type]
    return [events.make() for _ in range(n)]


def test_every_event_is_valid_on_the_wire() -> None:
    for event in make(2000, gpus=4, seed=1):
        parsed = parse_event(encode_event(event))
        assert isinstance(parsed, TokenEvent)
        assert parsed == event
        assert parsed.event_id.version == 4


@pytest.mark.parametrize("model", list(MODELS))
def test_lengths_are_believable_and_fit_the_context(model: str) -> None:
    profile = MODELS[model]
    events = make(5000, model=model, seed=2)
    prompts = [e.prompt_tokens for e in events]
    completions = [e.completion_tokens for e in events]
    assert {e.model for e in events} == {model}
    assert all(e.total_tokens <= profile.context for e in events)
    assert all(1 <= c <= profile.max_output for c in completions)
    # Medians near the profile's (lognormal), and a real tail: some long prompts.
    assert 0.8 * profile.prompt_median < statistics.median(prompts) < 1.2 * profile.prompt_median
    med = statistics.median(completions)
    assert 0.8 * profile.completion_median < med < 1.2 * profile.completion_median
    assert max(prompts) > 5 * profile.prompt_median
    assert all(e.latency_ms is not None and e.latency_ms > 0 for e in events)


def test_mixed_traffic_follows_the_shares() -> None:
    events = make(10_000, seed=3)
    for name, profile in MODELS.items():
        share = sum(e.model == name for e in events) / len(events)
        assert abs(share - profile.share) < 0.03


def test_gpus_node_producer_and_ts() -> None:
    events = make(1000, gpus=3, seed=4)
    assert {e.gpu for e in events} == {0, 1, 2}
    assert {e.node for e in events} == {"vm4"}
    assert {e.producer for e in events} == {"test"}
    assert {e.ts for e in events} == {NOW}
    assert {e.gpu for e in make(50)} == {0}


def test_a_seed_reproduces_the_run_and_ids_are_distinct() -> None:
    assert make(100, seed=5) == make(100, seed=5)
    ids = [e.event_id for e in make(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(isinstance(i, uuid.UUID) for i in ids)


@given(seed=st.integers(min_value=0, max_value=2**32), gpus=st.integers(min_value=1, max_value=64))
def test_any_seed_gives_valid_events(seed: int, gpus: int) -> None:
    for event in make(20, seed=seed, gpus=gpus):
        assert isinstance(parse_event(encode_event(event)), TokenEvent)
        assert 0 <= int(event.gpu) < gpus


def test_unknown_model_and_no_gpus_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown model") as info:
        SyntheticEvents(node="n", model="gpt-9")
    assert "llama-3.1-8b" in str(info.value.hint)
    with pytest.raises(ConfigError, match="gpus"):
        SyntheticEvents(node="n", gpus=0)


def test_the_source_releases_what_the_bucket_allows() -> None:
    now = [0.0]
    bucket = TokenBucket(100, burst=10, clock=lambda: now[0])
    source = SyntheticSource(SyntheticEvents(node="n", seed=6, clock=lambda: NOW), bucket)
    assert len(source.due(1000)) == 1
    assert source.due(1000) == []
    assert source.wait() == pytest.approx(0.01)
    now[0] += 1.0
    assert len(source.due(4)) == 4
    assert len(source.due(1000)) == 6


@given(bits=st.integers(min_value=0, max_value=2**128 - 1))
def test_the_fast_uuid4_is_uuid_with_version_4(bits: int) -> None:
    expected = uuid.UUID(int=bits, version=4)
    fast = _uuid4(bits)
    assert (fast, str(fast), hash(fast), fast.version) == (
        expected,
        str(expected),
        hash(expected),
        4,
    )
