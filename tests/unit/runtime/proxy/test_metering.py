"""What a request used: include_usage asked for and hidden again, tokens counted."""

import json

import pytest

from gpucost.runtime.proxy.metering import StreamMeter, Usage, inspect_request, usage_of
from gpucost.runtime.proxy.sse import SseEvent

pytestmark = pytest.mark.unit


def body(**fields: object) -> bytes:
    return json.dumps({"model": "m", "messages": [], **fields}).encode()


def test_a_stream_asks_for_usage_on_the_clients_behalf() -> None:
    info = inspect_request(body(stream=True))
    assert info.stream
    assert not info.client_wants_usage
    sent = json.loads(info.body)
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == []


def test_other_stream_options_are_kept() -> None:
    info = inspect_request(body(stream=True, stream_options={"continuous_usage_stats": False}))
    assert json.loads(info.body)["stream_options"] == {
        "continuous_usage_stats": False,
        "include_usage": True,
    }


def test_a_client_that_asks_gets_its_body_unchanged() -> None:
    original = body(stream=True, stream_options={"include_usage": True})
    info = inspect_request(original)
    assert info.client_wants_usage
    assert info.body == original


@pytest.mark.parametrize("raw", [body(), body(stream=False), b"", b"not json", b"[1]"])
def test_no_stream_no_change(raw: bytes) -> None:
    info = inspect_request(raw)
    assert info.body == raw
    assert not info.stream


def test_model_is_read() -> None:
    assert inspect_request(body()).model == "m"
    assert inspect_request(b'{"model": 5}').model is None


@pytest.mark.parametrize(
    ("payload", "usage"),
    [
        ({"usage": {"prompt_tokens": 3, "completion_tokens": 2}}, Usage(3, 2)),
        ({"usage": {"prompt_tokens": 3}}, Usage(3, 0)),  # embeddings report no completion
        ({"usage": None}, None),
        ({"usage": {"prompt_tokens": -1, "completion_tokens": 2}}, None),
        ({"usage": {"prompt_tokens": True, "completion_tokens": 2}}, None),
        ({}, None),
        (None, None),
    ],
)
def test_usage_of(payload: dict[str, object] | None, usage: Usage | None) -> None:
    assert usage_of(payload) == usage


def sse(payload: object) -> SseEvent:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return SseEvent(f"data: {data}\n\n".encode(), data)


CHUNKS = [
    {"model": "m", "choices": [{"delta": {"role": "assistant", "content": None}}]},
    {"model": "m", "choices": [{"delta": {"content": "Hel"}}]},
    {"model": "m", "choices": [{"delta": {"content": "lo"}}]},
    {"model": "m", "choices": [{"delta": {}, "finish_reason": "stop"}]},
    {"model": "m", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}},
]


@pytest.mark.parametrize("hide", [True, False])
def test_stream_meter_counts_and_hides_only_the_usage_chunk(hide: bool) -> None:
    meter = StreamMeter(hide_usage_chunk=hide)
    shown = [meter.observe(sse(c), now=float(i)) for i, c in enumerate(CHUNKS)]
    shown.append(meter.observe(sse("[DONE]"), now=9.0))
    assert shown == [True, True, True, True, not hide, True]
    assert (meter.prompt_tokens, meter.completion_tokens) == (7, 2)
    assert meter.first_token_at == 1.0
    assert meter.model == "m"


def test_without_usage_the_streamed_chunks_are_the_count() -> None:
    meter = StreamMeter(hide_usage_chunk=True)
    for chunk in CHUNKS[:3]:
        meter.observe(sse(chunk), now=0.0)
    assert (meter.prompt_tokens, meter.completion_tokens) == (0, 2)


def test_completions_text_chunks_count() -> None:
    meter = StreamMeter(hide_usage_chunk=True)
    meter.observe(sse({"choices": [{"text": "x"}]}), now=0.0)
    assert meter.token_chunks == 1
