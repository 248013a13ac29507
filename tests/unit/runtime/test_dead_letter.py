import pytest

from gpucost.runtime.kafka import DLQ_MAX_VALUE_BYTES, dead_letter_record

pytestmark = pytest.mark.unit


def record(value: bytes | None) -> tuple[bytes | None, dict[str, str | bytes | None]]:
    out, headers = dead_letter_record(
        value, reason="too_large", detail="x" * 900, topic="t", partition=2, offset=7
    )
    return out, dict(headers)


def test_a_small_value_is_kept_whole_with_its_reason_and_origin() -> None:
    value, headers = record(b"not json")
    assert value == b"not json"
    assert headers["reason"] == b"too_large"
    assert headers["source.topic"] == b"t"
    assert (headers["source.partition"], headers["source.offset"]) == (b"2", b"7")
    assert isinstance(headers["detail"], bytes)
    assert len(headers["detail"]) == 500
    assert "truncated" not in headers


def test_a_value_over_the_default_message_limit_is_cut_and_says_so() -> None:
    # Reliability case 4: a 2 MB input made the dead-letter produce raise and the
    # processor exit.
    big = b"x" * (2 * 1024 * 1024)
    value, headers = record(big)
    assert value == big[:DLQ_MAX_VALUE_BYTES]
    assert headers["truncated"] == b"true"
    assert headers["original.bytes"] == str(len(big)).encode()
    assert DLQ_MAX_VALUE_BYTES + 4096 < 1_000_000


def test_no_value_stays_none() -> None:
    assert record(None)[0] is None
