"""The upstream's errors reach the client as they were, and still leave an event."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from integration.proxy.helpers import chat, proxy_events
from support.llama import LlamaServer
from support.pipeline import free_port
from support.proxy_process import ProxyProcess

pytestmark = pytest.mark.integration
TEAM_A = {"authorization": "Bearer sk-team-a"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # A bad request: messages must be a list.
        ("/v1/chat/completions", {"model": "tiny-random-llama", "messages": "not a list"}),
        # A server started without --embeddings refuses embeddings.
        ("/v1/embeddings", {"model": "tiny-random-llama", "input": "GPU"}),
    ],
)
def test_upstream_errors_pass_through_with_an_event(
    llama_server: LlamaServer,
    proxy_factory: Callable[..., ProxyProcess],
    kafka_bootstrap: str,
    path: str,
    body: dict[str, object],
) -> None:
    proxy = proxy_factory()
    with httpx.Client(timeout=30) as client:
        direct = client.post(f"{llama_server.url}{path}", json=body)
        proxied = client.post(f"{proxy.url}{path}", json=body, headers=TEAM_A)
    assert direct.status_code >= 400
    assert proxied.status_code == direct.status_code
    assert proxied.json() == direct.json()
    assert proxied.headers["content-type"] == direct.headers["content-type"]
    (event,) = proxy_events(kafka_bootstrap, proxy.env["KAFKA_TOPIC"], 1)
    assert event.status == direct.status_code
    assert (event.prompt_tokens, event.completion_tokens) == (0, 0)
    assert event.tenant == "team-a"


def test_a_body_that_is_not_json_is_passed_through_with_an_event(
    llama_server: LlamaServer, proxy_factory: Callable[..., ProxyProcess], kafka_bootstrap: str
) -> None:
    proxy = proxy_factory()
    headers = {"content-type": "application/json", **TEAM_A}
    with httpx.Client(timeout=30) as client:
        direct = client.post(f"{llama_server.url}/v1/chat/completions", content=b"{nope")
        proxied = client.post(f"{proxy.url}/v1/chat/completions", content=b"{nope", headers=headers)
    assert direct.status_code >= 400
    assert (proxied.status_code, proxied.content) == (direct.status_code, direct.content)
    (event,) = proxy_events(kafka_bootstrap, proxy.env["KAFKA_TOPIC"], 1)
    assert (event.status, event.model, event.tenant) == (direct.status_code, "unknown", "team-a")


def test_a_streamed_request_refused_is_passed_through(
    llama_server: LlamaServer, proxy_factory: Callable[..., ProxyProcess], kafka_bootstrap: str
) -> None:
    proxy = proxy_factory()
    body = chat(stream=True, n_probs="many")  # a bad type: refused before any stream
    with httpx.Client(timeout=30) as client:
        direct = client.post(f"{llama_server.url}/v1/chat/completions", json=body)
        proxied = client.post(f"{proxy.url}/v1/chat/completions", json=body)
    assert direct.status_code >= 400
    assert (proxied.status_code, proxied.json()) == (direct.status_code, direct.json())
    (event,) = proxy_events(kafka_bootstrap, proxy.env["KAFKA_TOPIC"], 1)
    assert event.status == direct.status_code


def test_unknown_route_is_the_proxys_404(proxy_factory: Callable[..., ProxyProcess]) -> None:
    proxy = proxy_factory()
    assert httpx.post(f"{proxy.url}/v1/nothing-here", json={}, timeout=10).status_code == 404
    assert proxy.metric("gpucost_proxy_events_total") == 0


def test_an_unreachable_upstream_is_a_502_with_an_event(
    proxy_factory: Callable[..., ProxyProcess], kafka_bootstrap: str
) -> None:
    proxy = proxy_factory(PROXY_UPSTREAMS=f"gone=http://127.0.0.1:{free_port()}@gpu-node-1:0")
    answer = httpx.post(f"{proxy.url}/v1/chat/completions", json=chat(), timeout=30)
    assert answer.status_code == 502
    assert answer.json()["error"]["type"] == "upstream_unreachable"
    (event,) = proxy_events(kafka_bootstrap, proxy.env["KAFKA_TOPIC"], 1)
    assert (event.status, event.model, event.completion_tokens) == (502, "tiny-random-llama", 0)
