"""GPU samples on the wire: what `gpucost-agent` publishes and the processor consumes.

One message per GPU per reading, on the `gpu_samples` topic, keyed by the node's name.
The key is the node, not the GPU, on purpose: a token event names its GPU by index or
by UUID, whichever its producer knows, but always names its node, so keying both
topics by node puts a node's events and samples on the same partition number, and the
consumer that owns that partition owns every window of that node's GPUs (see
docs/architecture.md, "Ownership").

Readings a source could not take are absent or null, never a guess. Validation is
strict, like the token events: anything malformed is refused with a reason.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from gpucost.runtime.events import MAX_TS, MIN_TS, ShortText
from gpucost.runtime.samples import GpuSample

SAMPLES_TOPIC: Final = "gpu_samples"
MAX_SAMPLE_BYTES: Final = 4 * 1024

Uuid = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/-]+$")]
Finite = Annotated[float, msgspec.Meta(ge=-1e15, le=1e15)]


class SampleMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One reading of one GPU of one node."""

    v: Literal[1]
    node: ShortText
    t: Annotated[float, msgspec.Meta(ge=MIN_TS, lt=MAX_TS)]
    gpu_index: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
    source: Literal["nvml", "smi", "seed"]
    gpu_uuid: Uuid | None = None
    gpu_name: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    mig_mode: bool | None = None
    # Readings: range checks happen in the processor (dropped and counted there), so a
    # sample with one absurd reading still delivers its others.
    power_w: Finite | None = None
    energy_j: Finite | None = None
    gpu_util_pct: Finite | None = None
    mem_util_pct: Finite | None = None
    mem_used_bytes: int | None = None
    mem_total_bytes: int | None = None
    temp_c: Finite | None = None
    sm_clock_mhz: Finite | None = None
    agent: ShortText | None = None
    """Who published it (the agent's id), for tracing."""


class SampleRejection(msgspec.Struct, frozen=True):
    reason: Literal["too_large", "empty", "invalid_sample"]
    detail: str


_decoder: Final = msgspec.json.Decoder(SampleMessage)
_encoder: Final = msgspec.json.Encoder()


def sample_key(node: str) -> bytes:
    """The Kafka key of a node's samples, and of its token events (see the module doc)."""
    return node.encode()


def encode_sample(sample: GpuSample, node: str, agent: str | None = None) -> bytes:
    message = SampleMessage(
        v=1,
        node=node,
        t=sample.t,
        gpu_index=sample.gpu_index,
        source=sample.source,
        gpu_uuid=sample.gpu_uuid,
        gpu_name=sample.gpu_name,
        mig_mode=sample.mig_mode,
        power_w=sample.power_w,
        energy_j=sample.energy_j,
        gpu_util_pct=sample.gpu_util_pct,
        mem_util_pct=sample.mem_util_pct,
        mem_used_bytes=sample.mem_used_bytes,
        mem_total_bytes=sample.mem_total_bytes,
        temp_c=sample.temp_c,
        sm_clock_mhz=sample.sm_clock_mhz,
        agent=agent,
    )
    return _encoder.encode(message)


def decode_sample(raw: bytes | None) -> tuple[str, GpuSample] | SampleRejection:
    """The node and the sample a message carries, or why it cannot be used."""
    if not raw:
        return SampleRejection("empty", "message has no value")
    if len(raw) > MAX_SAMPLE_BYTES:
        return SampleRejection("too_large", f"{len(raw)} bytes > {MAX_SAMPLE_BYTES}")
    try:
        m = _decoder.decode(raw)
    except msgspec.DecodeError as error:
        return SampleRejection("invalid_sample", str(error)[:300])
    sample = GpuSample(
        t=m.t,
        gpu_index=m.gpu_index,
        source=m.source,
        gpu_uuid=m.gpu_uuid,
        gpu_name=m.gpu_name,
        power_w=m.power_w,
        energy_j=m.energy_j,
        gpu_util_pct=m.gpu_util_pct,
        mem_util_pct=m.mem_util_pct,
        mem_used_bytes=m.mem_used_bytes,
        mem_total_bytes=m.mem_total_bytes,
        temp_c=m.temp_c,
        sm_clock_mhz=m.sm_clock_mhz,
        mig_mode=m.mig_mode,
    )
    return m.node, sample
