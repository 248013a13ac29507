"""A client gone mid-stream: the event has what was streamed until then, and says so."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from integration.proxy.helpers import chat, proxy_events
from support.llama import LlamaServer
from support.proxy_process import ProxyProcess

pytestmark = pytest.mark.integration
MAX_TOKENS = 1900
"""Most of a slot's 2,048 tokens: about 1.5 s of generation here, far longer than the
proxy takes to see the client go."""
READ_CHUNKS = 3


def test_a_client_disconnect_mid_stream_gives_a_flagged_event(
    proxy_factory: Callable[..., ProxyProcess], kafka_bootstrap: str
) -> None:
    proxy = proxy_factory()
    body = json.dumps(chat(max_tokens=MAX_TOKENS, stream=True, ignore_eos=True)).encode()
    # A raw socket: the test decides exactly when the connection goes, mid-answer.
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\n"
            b"Authorization: Bearer sk-team-a\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while received.count(b"data: ") < READ_CHUNKS:
            chunk = sock.recv(4096)
            assert chunk, "the proxy closed the stream early"
            received += chunk
        assert b" 200 " in received.split(b"\r\n", 1)[0]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    (event,) = proxy_events(kafka_bootstrap, proxy.env["KAFKA_TOPIC"], 1)
    assert event.disconnected
    assert event.status == 200
    assert event.tenant == "team-a"
    # The tokens streamed before the cut: at least what the client read, not the whole answer.
    assert READ_CHUNKS - 1 <= event.completion_tokens < MAX_TOKENS
    assert event.ttft_ms is not None


def test_an_upstream_that_dies_mid_stream_gives_a_502_event(
    llama_server: LlamaServer,
    proxy_factory: Callable[..., ProxyProcess],
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    """The client's stream ends where the upstream's did; the event says 502 and counts
    what was streamed. Its own llama-server, since this test kills it."""
    own = LlamaServer(llama_server.binary, llama_server.model, tmp_path / "llama.log")
    own.start()
    try:
        proxy = proxy_factory(PROXY_UPSTREAMS=f"own={own.url}@gpu-node-1:0")
        body = chat(max_tokens=MAX_TOKENS, stream=True, ignore_eos=True)
        chunks = 0
        with httpx.stream(
            "POST", f"{proxy.url}/v1/chat/completions", json=body, timeout=30
        ) as answer:
            for line in answer.iter_lines():
                if line.startswith("data: "):
                    chunks += 1
                if chunks == READ_CHUNKS and own.process is not None:
                    own.process.kill()
        assert chunks < MAX_TOKENS
    finally:
        own.stop()
    (event,) = proxy_events(kafka_bootstrap, proxy.env["KAFKA_TOPIC"], 1)
    assert event.status == 502
    assert not event.disconnected
    assert READ_CHUNKS - 1 <= event.completion_tokens < MAX_TOKENS
