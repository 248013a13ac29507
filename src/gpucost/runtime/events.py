"""Token-usage events: the wire format (versions 1 and 2), strict validation, rejection reasons.

Validation is one msgspec decode into a typed struct: no dict is built on the hot path.
Everything a producer can get wrong ends as a `Rejection` with a stable reason code,
never as an exception, so a bad message can be dead-lettered and the processor goes on.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

MAX_EVENT_BYTES: Final = 64 * 1024
MAX_TOKENS: Final = 10_000_000
"""Per request. Far beyond any context window in use; above it a count is a bug, not usage."""

# Timestamps outside [2000, 2100) are a broken clock or a unit mistake (ms for s).
MIN_TS: Final = 946_684_800.0
MAX_TS: Final = 4_102_444_800.0

TokenCount = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
# GPU ids are indexes or names like GPU-<uuid> / MIG-<uuid>: identifiers, not free text.
GpuName = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/-]+$")]
GpuId = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | GpuName

Reason = Literal[
    "too_large",
    "empty",
    "not_json",
    "not_object",
    "unsupported_version",
    "missing_field",
    "unknown_field",
    "invalid_field",
    "future_ts",
]


class TokenEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One completed LLM request. `event_id` is the idempotency key end to end."""

    v: Literal[1]
    event_id: uuid.UUID
    ts: float | str
    """When the request completed: unix seconds, or RFC 3339 on the wire."""
    model: ShortText
    gpu: GpuId
    node: ShortText
    prompt_tokens: TokenCount
    completion_tokens: TokenCount
    latency_ms: Annotated[float, msgspec.Meta(ge=0, le=86_400_000)] | None = None
    producer: ShortText | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


TenantName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@/-]+$")
]


class TokenEventV2(TokenEvent, frozen=True, forbid_unknown_fields=True):
    """Version 2: what a metering proxy knows about a real request, beside version 1's fields.

    A subclass, so everything that takes a TokenEvent takes either. Version 1 stays exactly
    as it was: a v1 event carrying any of these fields is still an unknown-field rejection.
    """

    v: Literal[2]  # type: ignore[assignment]  # the version is what tells the two apart
    tenant: TenantName | None = None
    """Who sent the request: a mapped name or a hash of the API key, never the key."""
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    """The upstream's HTTP status (or the proxy's own 502 when the upstream was unreachable)."""
    ttft_ms: Annotated[float, msgspec.Meta(ge=0, le=86_400_000)] | None = None
    """Time to the first streamed token; None for an answer that was not streamed."""
    disconnected: bool = False
    """The client went away mid-stream: the counts are what was streamed until then."""


class Rejection(msgspec.Struct, frozen=True):
    reason: Reason
    detail: str


_decoder: Final = msgspec.json.Decoder(TokenEvent)
_decoder_v2: Final = msgspec.json.Decoder(TokenEventV2)
_encoder: Final = msgspec.json.Encoder()


def parse_event(
    raw: bytes | None, *, now: float | None = None, max_future_skew_s: float = math.inf
) -> TokenEvent | Rejection:
    """Validate one message value. Returns the event with `ts` as unix seconds, or why not.

    With `now`, an event dated more than `max_future_skew_s` ahead of it is refused as
    `future_ts`: its window would stay open for years, holding back every rule that waits
    for the newest event (a broken clock, or milliseconds sent as seconds)."""
    if raw is None or len(raw) == 0:
        return Rejection("empty", "message has no value")
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection("too_large", f"{len(raw)} bytes > {MAX_EVENT_BYTES}")
    try:
        event = _decode(raw)
    except msgspec.DecodeError as error:  # ValidationError is a subclass: order matters
        if isinstance(error, msgspec.ValidationError):
            return Rejection(_classify(str(error)), str(error))
        return Rejection("not_json", str(error))
    except UnicodeDecodeError as error:
        # msgspec checks UTF-8 only inside JSON strings, and raises this, not DecodeError.
        return Rejection("not_json", f"invalid UTF-8 in a string: {error}")
    ts = _unix_seconds(event.ts)
    if ts is None:
        return Rejection("invalid_field", f"ts {event.ts!r} is not a time in [2000, 2100)")
    if now is not None and ts > now + max_future_skew_s:
        return Rejection(
            "future_ts", f"ts {ts:.3f} is {ts - now:.0f} s ahead (over {max_future_skew_s:g} s)"
        )
    if isinstance(event.ts, str):
        event = msgspec.structs.replace(event, ts=ts)
    return event


def _decode(raw: bytes) -> TokenEvent:
    """Version 1 first (nearly every event), version 2 only when the version says so."""
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as error:
        if _classify(str(error)) != "unsupported_version":
            raise
    return _decoder_v2.decode(raw)


def encode_event(event: TokenEvent) -> bytes:
    return _encoder.encode(event)


def event_ts(event: TokenEvent) -> float:
    """`ts` of a parsed event, always unix seconds after `parse_event`."""
    assert isinstance(event.ts, float)
    return event.ts


def _classify(message: str) -> Reason:
    if "at `$.v`" in message or "field `v`" in message:
        return "unsupported_version"
    if "missing required field" in message:
        return "missing_field"
    if "unknown field" in message:
        return "unknown_field"
    if " - at `$" not in message and message.startswith("Expected `object`"):
        return "not_object"
    return "invalid_field"


def _unix_seconds(value: float | str) -> float | None:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:  # RFC 3339 requires an offset; a naive time is ambiguous
            return None
        value = parsed.timestamp()
    if not math.isfinite(value) or not MIN_TS <= value < MAX_TS:
        return None
    return float(value)
