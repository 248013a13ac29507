"""Version 2 events (the metering proxy's): tenant and request facts; version 1 unchanged."""

import json
import uuid

import pytest

from gpucost.runtime.documents import event_document
from gpucost.runtime.events import Rejection, TokenEvent, TokenEventV2, encode_event, parse_event

pytestmark = pytest.mark.unit


def event(v: int = 2, **overrides: object) -> bytes:
    value: dict[str, object] = {
        "v": v,
        "event_id": str(uuid.uuid4()),
        "ts": 1795729196.69,
        "model": "tiny",
        "gpu": 0,
        "node": "gpu1",
        "prompt_tokens": 12,
        "completion_tokens": 5,
    }
    value.update(overrides)
    return json.dumps(value).encode()


def test_v2_carries_tenant_and_request_facts() -> None:
    parsed = parse_event(
        event(tenant="team-a", status=200, ttft_ms=12.5, disconnected=True, latency_ms=40.0)
    )
    assert isinstance(parsed, TokenEventV2)
    assert isinstance(parsed, TokenEvent)  # everything that takes a v1 event takes it
    assert (parsed.tenant, parsed.status, parsed.ttft_ms, parsed.disconnected) == (
        "team-a",
        200,
        12.5,
        True,
    )


def test_v2_fields_are_optional() -> None:
    parsed = parse_event(event())
    assert isinstance(parsed, TokenEventV2)
    assert parsed.tenant is None
    assert parsed.disconnected is False


def test_v1_stays_strict_about_v2_fields() -> None:
    parsed = parse_event(event(v=1, tenant="team-a"))
    assert isinstance(parsed, Rejection)
    assert parsed.reason == "unknown_field"


def test_v1_events_still_parse_as_v1() -> None:
    parsed = parse_event(event(v=1))
    assert type(parsed) is TokenEvent


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"v": 3}, "unsupported_version"),
        ({"tenant": ""}, "invalid_field"),
        ({"tenant": "has space"}, "invalid_field"),
        ({"status": 99}, "invalid_field"),
        ({"ttft_ms": -1}, "invalid_field"),
        ({"surprise": 1}, "unknown_field"),
    ],
)
def test_bad_v2_events_are_rejected(overrides: dict[str, object], reason: str) -> None:
    parsed = parse_event(event(**overrides))
    assert isinstance(parsed, Rejection)
    assert parsed.reason == reason


def test_v2_round_trips() -> None:
    parsed = parse_event(event(tenant="key-0123456789abcdef", status=404))
    assert isinstance(parsed, TokenEventV2)
    assert parse_event(encode_event(parsed)) == parsed


def test_document_carries_the_tenant() -> None:
    v2 = parse_event(event(tenant="team-a"))
    v1 = parse_event(event(v=1))
    assert isinstance(v2, TokenEvent)
    assert isinstance(v1, TokenEvent)
    doc = event_document(v2, "0", 10.0, partition=0, offset=1, received_at=0.0)
    assert doc["tenant"] == "team-a"
    assert event_document(v1, "0", 10.0, partition=0, offset=2, received_at=0.0)["tenant"] is None
