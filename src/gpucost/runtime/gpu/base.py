"""What every GPU source promises, so the processor never knows which one it reads."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gpucost.errors import GpucostError
from gpucost.runtime.samples import GpuSample, SourceName


class GpuSourceUnavailable(GpucostError):
    """A GPU source cannot be opened or stopped answering; the message says why."""


@runtime_checkable
class GpuSource(Protocol):
    """One reader of every GPU on the host: NVML, nvidia-smi or a recorded trace."""

    name: SourceName

    def read(self) -> list[GpuSample]:
        """One sample per GPU, taken now. Blocks for well under a second.

        Raises GpuSourceUnavailable when the source as a whole stops answering;
        a single field it cannot read is left None instead.
        """
        ...

    def describe(self) -> dict[str, object]:
        """JSON-ready identity: GPU count, names, uuids, MIG flags, unsupported fields."""
        ...

    def close(self) -> None:
        """Release the library or process; safe to call twice."""
        ...
