"""Reading what the proxy published, and talking to OpenAI-compatible servers."""

from __future__ import annotations

import json
from typing import Any

import httpx

from gpucost.runtime.events import TokenEventV2, parse_event
from support.streams import read_topic

PROMPT = [{"role": "user", "content": "Count the GPUs in the rack, please."}]


def chat(max_tokens: int = 8, **fields: Any) -> dict[str, Any]:
    """A deterministic chat request: greedy sampling, a fixed seed."""
    return {
        "model": "tiny-random-llama",
        "messages": PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 1,
        **fields,
    }


def sse_payloads(client: httpx.Client, url: str, body: dict[str, Any], **kw: Any) -> list[Any]:
    """Every `data:` payload of a streamed answer, JSON-decoded (`[DONE]` kept as text)."""
    payloads: list[Any] = []
    with client.stream("POST", url, json=body, **kw) as answer:
        assert answer.status_code == 200, answer.read()
        for line in answer.iter_lines():
            if line.startswith("data:"):
                data = line[5:].strip()
                payloads.append(data if data == "[DONE]" else json.loads(data))
    return payloads


def content_of(payloads: list[Any]) -> str:
    return "".join(
        (choice.get("delta") or {}).get("content") or ""
        for p in payloads
        if isinstance(p, dict)
        for choice in p.get("choices") or []
    )


def usage_chunks(payloads: list[Any]) -> list[dict[str, Any]]:
    return [p for p in payloads if isinstance(p, dict) and p.get("usage") and not p.get("choices")]


def proxy_events(
    bootstrap: str, topic: str, expected: int, timeout: float = 60
) -> list[TokenEventV2]:
    events = []
    for message in read_topic(bootstrap, topic, expected, timeout):
        event = parse_event(message.value())
        assert isinstance(event, TokenEventV2), event
        # Keyed by node, as the GPU samples of that node are: one owner per window.
        assert message.key() == event.node.encode()
        events.append(event)
    return events
