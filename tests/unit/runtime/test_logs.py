"""The processor and the producer write one JSON log shape."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gpucost.runtime import logs, producer_main

pytestmark = pytest.mark.unit


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger("gpucost")
    saved = (root.handlers[:], root.level, ours.handlers[:], ours.level, ours.propagate)
    yield
    root.handlers[:], ours.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    ours.setLevel(saved[3])
    ours.propagate = saved[4]


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_processor_and_producer_lines_have_one_shape(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor_out, producer_out = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stderr", processor_out)
    logs.configure_json_logging("INFO")
    logging.getLogger("gpucost.processor").info("waiting for kafka", extra={"problem": "down"})

    producer_main._setup_logging(producer_out)  # not a terminal: JSON lines
    producer_main.log.info("done", extra={"sent": 3, "acked": 3})

    (processor,) = lines(processor_out)
    (producer,) = lines(producer_out)
    assert list(processor) == ["ts", "level", "logger", "msg", "problem"]
    assert list(producer) == ["ts", "level", "logger", "msg", "sent", "acked"]
    assert (processor["logger"], processor["msg"], processor["problem"]) == (
        "gpucost.processor", "waiting for kafka", "down",
    )  # fmt: skip
    assert (producer["logger"], producer["level"], producer["sent"]) == (
        "gpucost.producer",
        "info",
        3,
    )


def test_a_traceback_is_one_field(restore_logging: None) -> None:
    out = io.StringIO()
    producer_main._setup_logging(out)
    try:
        raise ValueError("boom")
    except ValueError:
        producer_main.log.exception("failed")
    (line,) = lines(out)
    assert line["msg"] == "failed"
    assert "ValueError: boom" in str(line["exc"])
