"""Synthetic token-usage events with believable lengths per model, and the paced source over them.

Lengths are lognormal (chat traffic has a long tail of RAG-sized prompts and a few long
answers), clipped to each model's context window and output limit. Everything random comes
from one `random.Random`, so a seed reproduces a run event for event, event_ids included.
"""

from __future__ import annotations

import random
import time
import uuid
from bisect import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import exp, log
from types import MappingProxyType
from typing import Final

from gpucost.errors import ConfigError
from gpucost.runtime.events import TokenEvent
from gpucost.runtime.ratelimit import TokenBucket


@dataclass(frozen=True, slots=True)
class ModelProfile:
    name: str
    context: int
    """Context window, tokens: prompt + completion never exceed it."""
    max_output: int
    prompt_median: float
    prompt_sigma: float
    completion_median: float
    completion_sigma: float
    prefill_tps: float
    """Prompt tokens/s for one request on one GPU; with decode_tps it gives a plausible latency."""
    decode_tps: float
    share: float
    """Fraction of traffic when no model is chosen: small models serve most requests."""
    prompt_mu: float = field(init=False)
    completion_mu: float = field(init=False)

    def __post_init__(self) -> None:
        # Precomputed: make() runs tens of thousands of times a second.
        object.__setattr__(self, "prompt_mu", log(self.prompt_median))
        object.__setattr__(self, "completion_mu", log(self.completion_median))


MODELS: Final[Mapping[str, ModelProfile]] = MappingProxyType(
    {
        p.name: p
        for p in (
            ModelProfile("llama-3.1-8b", 131_072, 4_096, 700, 1.1, 220, 0.9, 8_000, 90, 0.45),
            ModelProfile("llama-3.1-70b", 131_072, 4_096, 900, 1.1, 280, 0.9, 2_500, 30, 0.20),
            ModelProfile("mistral-7b", 32_768, 4_096, 500, 1.0, 200, 0.9, 9_000, 95, 0.20),
            ModelProfile("qwen2.5-32b", 32_768, 8_192, 800, 1.1, 320, 0.9, 3_500, 40, 0.15),
        )
    }
)


class SyntheticEvents:
    """Makes `TokenEvent`s: a model by traffic share (or the one chosen), lengths from its
    profile, a GPU in 0..gpus-1, `ts` from the clock."""

    def __init__(
        self,
        *,
        node: str,
        producer: str | None = None,
        gpus: int = 1,
        model: str | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if gpus < 1:
            raise ConfigError(f"gpus must be at least 1, got {gpus}")
        if model is not None and model not in MODELS:
            raise ConfigError(f"unknown model {model!r}", hint=f"one of: {', '.join(MODELS)}")
        self._profiles = [MODELS[model]] if model else list(MODELS.values())
        self._cum_shares = _cumulative([p.share for p in self._profiles])
        self._total_share = self._cum_shares[-1]
        self._mixed = len(self._profiles) > 1
        self._node = node
        self._producer = producer
        self._gpus = gpus
        self._rng = random.Random(seed)
        self._clock = clock

    def make(self, ts: float | None = None) -> TokenEvent:
        # The hot path at 20,000+ events/s: exp(gauss) rather than lognormvariate, a bisect
        # rather than choices(), no helper calls; each saves a microsecond or more per event.
        rng = self._rng
        profile = self._profiles[0]
        if self._mixed:
            profile = self._profiles[bisect(self._cum_shares, rng.random() * self._total_share)]
        prompt = round(exp(profile.prompt_mu + profile.prompt_sigma * rng.gauss()))
        prompt = max(1, min(prompt, profile.context - 1))
        completion = round(exp(profile.completion_mu + profile.completion_sigma * rng.gauss()))
        completion = max(1, min(completion, profile.max_output, profile.context - prompt))
        latency_s = prompt / profile.prefill_tps + completion / profile.decode_tps
        return TokenEvent(
            v=1,
            event_id=_uuid4(rng.getrandbits(128)),
            ts=self._clock() if ts is None else ts,
            model=profile.name,
            gpu=int(rng.random() * self._gpus),
            node=self._node,
            prompt_tokens=prompt,
            completion_tokens=completion,
            latency_ms=round(latency_s * (900.0 + 400.0 * rng.random()), 1),
            producer=self._producer,
        )

    def batch(self, n: int) -> list[TokenEvent]:
        """`n` events completed now: one clock read for the burst, as the bucket released them."""
        now = self._clock()
        return [self.make(now) for _ in range(n)]


class SyntheticSource:
    """Synthetic events released by a token bucket: the producer loop's source in synthetic mode."""

    def __init__(self, events: SyntheticEvents, bucket: TokenBucket) -> None:
        self._events = events
        self._bucket = bucket

    def due(self, most: int) -> list[TokenEvent]:
        n = self._bucket.take(most)
        return self._events.batch(n) if n else []

    def wait(self) -> float | None:
        return self._bucket.delay()


_VERSION_4_MASK: Final = ~(0xC000 << 48 | 0xF000 << 64)
_VERSION_4_BITS: Final = 0x8000 << 48 | 0x4000 << 64


def _uuid4(bits: int) -> uuid.UUID:
    """`uuid.UUID(int=bits, version=4)` at a tenth of the cost (its checks take 2 µs).

    The ids come from the seeded generator, not uuid4(), so a seed reproduces them."""
    value = object.__new__(uuid.UUID)
    # UUID is immutable through its own __setattr__; this sets its two slots as __init__ does.
    object.__setattr__(value, "int", (bits & _VERSION_4_MASK) | _VERSION_4_BITS)
    object.__setattr__(value, "is_safe", uuid.SafeUUID.unknown)
    return value


def _cumulative(shares: list[float]) -> list[float]:
    total = 0.0
    out = []
    for share in shares:
        total += share
        out.append(total)
    return out
