"""Loading recorded traces: the packaged seed, units, and one clear line for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpucost.errors import InputError
from gpucost.runtime.trace import default_seed_path, load_trace, parse_trace

pytestmark = pytest.mark.unit


def test_packaged_seed_loads_with_units_converted() -> None:
    trace = load_trace(default_seed_path())
    assert (len(trace.samples), len(trace.events)) == (1704, 40)
    first = trace.samples[0]
    assert first.source == "seed"
    assert first.gpu_name == "NVIDIA H200"
    assert first.gpu_uuid == "GPU-701ef3e5-e139-92fe-6300-365ba25c89f9"
    assert first.power_w == pytest.approx(79.99)  # 79990 mW
    assert first.energy_j == pytest.approx(3317.366)  # 3317366 mJ
    assert first.mig_mode is False
    assert first.phase == "init"
    assert [s.t for s in trace.samples] == sorted(s.t for s in trace.samples)
    event = trace.events[0]
    assert (event.gpu, event.ts, event.batch_size, event.total_tokens) == (
        "0",
        event.ts_end,
        1,
        256,
    )
    assert trace.meta.model == "llama-1.10b-random"
    assert trace.meta.raw["gpu"]["driver"] == "580.159.04"


def test_missing_readings_and_error_keys() -> None:
    doc = {
        "meta": {"gpu": {"name": "X"}},
        "samples": [{"t": 2, "power_mw_error": "NVMLError_NotSupported", "energy_mj": 5000}],
        "events": [],
    }
    (sample,) = parse_trace(json.dumps(doc).encode()).samples
    assert sample.power_w is None
    assert sample.energy_j == pytest.approx(5)
    assert sample.gpu_util_pct is None


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{not json", "is not JSON"),
        (b"[]", "is not a GPU trace"),
        (b'{"meta": {}, "samples": [{"t": "noon"}]}', "$.samples[0].t"),
        (b'{"meta": {}, "samples": [], "events": [{"ts_end": 1}]}', "is not a GPU trace"),
    ],
)
def test_bad_files_are_one_input_error_line(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "trace.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_trace(path)
    assert says in caught.value.one_line()
    assert "\n" not in caught.value.one_line()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_trace(tmp_path / "nope.json")


def test_directory_is_not_a_trace(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_trace(tmp_path)


def test_packaged_seed_is_the_shared_recording() -> None:
    # The repository's sibling `shared/` holds the original recording, where present.
    shared = (
        Path(__file__).resolve().parents[3].parent
        / "shared/fixtures/gpu/h200-llama1b-decode/trace.json"
    )
    if not shared.exists():
        pytest.skip("no shared fixtures beside the repository")
    assert default_seed_path().read_bytes() == shared.read_bytes()
