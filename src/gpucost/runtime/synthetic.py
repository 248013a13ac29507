"""Synthetic token-usage events with believable lengths per model, and the paced source over them.

Lengths are lognormal (chat traffic has a long tail of RAG-sized prompts and a few long
answers), clipped to each model's context window and output limit. Everything random comes
from one `random.Random`, so a seed reproduces a run event for event, event_ids included.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
        self._node = node
        self._producer = producer
        self._gpus = gpus
        self._rng = random.Random(seed)
        self._clock = clock

    def make(self, ts: float | None = None) -> TokenEvent:
        rng = self._rng
        profile = self._profiles[0]
        if len(self._profiles) > 1:
            profile = rng.choices(self._profiles, cum_weights=self._cum_shares)[0]
        prompt = _clip(rng.lognormvariate(math.log(profile.prompt_median), profile.prompt_sigma))
        prompt = min(prompt, profile.context - 1)
        completion = _clip(
            rng.lognormvariate(math.log(profile.completion_median), profile.completion_sigma)
        )
        completion = min(completion, profile.max_output, profile.context - prompt)
        latency_s = prompt / profile.prefill_tps + completion / profile.decode_tps
        return TokenEvent(
            v=1,
            # getrandbits instead of uuid4() so a seed reproduces ids; version=4 sets the bits.
            event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            ts=self._clock() if ts is None else ts,
            model=profile.name,
            gpu=rng.randrange(self._gpus) if self._gpus > 1 else 0,
            node=self._node,
            prompt_tokens=prompt,
            completion_tokens=completion,
            latency_ms=round(latency_s * 1000.0 * rng.uniform(0.9, 1.3), 1),
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


def _clip(tokens: float) -> int:
    return max(1, round(tokens))


def _cumulative(shares: list[float]) -> list[float]:
    total = 0.0
    out = []
    for share in shares:
        total += share
        out.append(total)
    return out
