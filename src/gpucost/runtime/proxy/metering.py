"""What one request used, read from the request and the upstream's answer: pure, no I/O.

OpenAI-compatible servers report `usage` in a non-streamed answer's body, and in a
streamed answer only when asked (`stream_options.include_usage`): then the last chunk has
`choices: []` and `usage`. The proxy asks on the client's behalf and hides that chunk
again from a client that did not ask, so what the client sees is what it asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from gpucost.runtime.proxy.sse import SseEvent


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the proxy reads from a request body before forwarding it."""

    model: str | None
    stream: bool
    client_wants_usage: bool
    """The client asked for the usage chunk itself: it must see it."""
    body: bytes
    """The body to forward: the client's, or with include_usage added."""
    metered: bool = True
    """A call that may use tokens (a POST): it gets an event whatever the answer."""


def inspect_request(body: bytes) -> RequestInfo:
    """Model and streaming of a JSON request; any other body is forwarded untouched."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return RequestInfo(None, False, False, body)
    model = payload.get("model")
    stream = payload.get("stream") is True
    options = payload.get("stream_options")
    wants = isinstance(options, dict) and options.get("include_usage") is True
    if stream and not wants:
        options = dict(options) if isinstance(options, dict) else {}
        options["include_usage"] = True
        body = json.dumps({**payload, "stream_options": options}).encode()
    return RequestInfo(model if isinstance(model, str) else None, stream, wants, body)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


def usage_of(payload: dict[str, Any] | None) -> Usage | None:
    """The `usage` object of an answer or chunk, if it has a sound one."""
    usage = payload.get("usage") if payload else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens", 0)
    if _count(prompt) and _count(completion):
        return Usage(prompt, completion)
    return None


def _count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_token(payload: dict[str, Any]) -> bool:
    """A chunk that carries generated output (chat delta, completion text, tool call)."""
    for choice in payload.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")):
            return True
        if choice.get("text"):
            return True
    return False


@dataclass(slots=True)
class StreamMeter:
    """Watches a streamed answer event by event; says which events the client gets."""

    hide_usage_chunk: bool
    usage: Usage | None = None
    model: str | None = None
    token_chunks: int = 0
    """Chunks that carried output: the best count of tokens when no usage came."""
    first_token_at: float | None = None
    _seen: int = field(default=0, repr=False)

    def observe(self, event: SseEvent, now: float) -> bool:
        """Record one event; True when it is forwarded to the client."""
        self._seen += 1
        payload = event.json()
        if payload is None:
            return True
        if self.model is None and isinstance(payload.get("model"), str):
            self.model = payload["model"]
        if _is_token(payload):
            self.token_chunks += 1
            if self.first_token_at is None:
                self.first_token_at = now
        usage = usage_of(payload)
        if usage is not None:
            self.usage = usage
            # The chunk the proxy asked for: usage and no choices. Hidden if not asked for.
            if self.hide_usage_chunk and not payload.get("choices"):
                return False
        return True

    @property
    def completion_tokens(self) -> int:
        return self.usage.completion_tokens if self.usage else self.token_chunks

    @property
    def prompt_tokens(self) -> int:
        return self.usage.prompt_tokens if self.usage else 0
