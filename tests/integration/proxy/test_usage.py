"""Usage through the proxy is the usage llama-server reports, streamed or not, per tenant."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from integration.proxy.conftest import GPU, NODE
from integration.proxy.helpers import (
    chat,
    content_of,
    proxy_events,
    sse_payloads,
    usage_chunks,
)
from support.llama import LlamaServer
from support.proxy_process import ProxyProcess

pytestmark = pytest.mark.integration
TEAM_A = {"authorization": "Bearer sk-team-a"}


def test_non_streamed_usage_is_the_upstreams(
    llama_server: LlamaServer, proxy_factory: Callable[..., ProxyProcess], kafka_bootstrap: str
) -> None:
    proxy = proxy_factory()
    with httpx.Client(timeout=60) as client:
        direct = client.post(f"{llama_server.url}/v1/chat/completions", json=chat()).json()
        answer = client.post(f"{proxy.url}/v1/chat/completions", json=chat(), headers=TEAM_A)
    assert answer.status_code == 200
    proxied = answer.json()
    assert proxied["usage"]["prompt_tokens"] == direct["usage"]["prompt_tokens"] > 0
    assert proxied["usage"]["completion_tokens"] == direct["usage"]["completion_tokens"] > 0
    assert proxied["choices"][0]["message"] == direct["choices"][0]["message"]

    (event,) = proxy_events(kafka_bootstrap, proxy.env["KAFKA_TOPIC"], 1)
    assert event.prompt_tokens == proxied["usage"]["prompt_tokens"]
    assert event.completion_tokens == proxied["usage"]["completion_tokens"]
    assert (event.tenant, event.status, event.node, str(event.gpu)) == ("team-a", 200, NODE, GPU)
    assert event.model == proxied["model"]
    assert event.latency_ms is not None
    assert event.latency_ms > 0
    assert event.ttft_ms is None
    assert not event.disconnected
    assert event.producer == "gpucost-proxy-test"


def test_streamed_usage_is_counted_and_its_chunk_hidden(
    llama_server: LlamaServer, proxy_factory: Callable[..., ProxyProcess], kafka_bootstrap: str
) -> None:
    """The client did not ask for usage: the proxy asks, counts it, and hides the chunk."""
    proxy = proxy_factory()
    asked = chat(max_tokens=12, stream=True, stream_options={"include_usage": True})
    with httpx.Client(timeout=60) as client:
        plain = sse_payloads(
            client, f"{llama_server.url}/v1/chat/completions", chat(12, stream=True)
        )
        with_usage = sse_payloads(client, f"{llama_server.url}/v1/chat/completions", asked)
        proxied = sse_payloads(
            client, f"{proxy.url}/v1/chat/completions", chat(12, stream=True), headers=TEAM_A
        )
    (usage,) = [chunk["usage"] for chunk in usage_chunks(with_usage)]
    assert usage_chunks(plain) == []
    assert usage_chunks(proxied) == []  # hidden again
    # What the client sees is what it would have seen from the upstream directly.
    assert len(proxied) == len(plain)
    assert content_of(proxied) == content_of(plain) != ""
    assert proxied[-1] == "[DONE]"

    (event,) = proxy_events(kafka_bootstrap, proxy.env["KAFKA_TOPIC"], 1)
    assert (event.prompt_tokens, event.completion_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert event.tenant == "team-a"
    assert event.ttft_ms is not None
    assert event.latency_ms is not None
    assert 0 < event.ttft_ms <= event.latency_ms
    assert not event.disconnected


def test_a_client_that_asks_for_usage_gets_the_chunk(
    llama_server: LlamaServer, proxy_factory: Callable[..., ProxyProcess], kafka_bootstrap: str
) -> None:
    proxy = proxy_factory()
    asked = chat(max_tokens=6, stream=True, stream_options={"include_usage": True})
    with httpx.Client(timeout=60) as client:
        direct = sse_payloads(client, f"{llama_server.url}/v1/chat/completions", asked)
        proxied = sse_payloads(client, f"{proxy.url}/v1/chat/completions", asked, headers=TEAM_A)
    (direct_usage,) = usage_chunks(direct)
    (proxied_usage,) = usage_chunks(proxied)
    assert proxied_usage["usage"]["completion_tokens"] == direct_usage["usage"]["completion_tokens"]
    assert proxied_usage["usage"]["prompt_tokens"] == direct_usage["usage"]["prompt_tokens"]
    (event,) = proxy_events(kafka_bootstrap, proxy.env["KAFKA_TOPIC"], 1)
    assert event.completion_tokens == proxied_usage["usage"]["completion_tokens"]


def test_completions_and_tenants_by_key_and_header(
    llama_server: LlamaServer, proxy_factory: Callable[..., ProxyProcess], kafka_bootstrap: str
) -> None:
    """/v1/completions too; a mapped key, an unmapped key (hashed) and a tenant header."""
    proxy = proxy_factory(PROXY_TENANT_HEADER="X-Team")
    body = {"model": "tiny-random-llama", "prompt": "GPU cost", "max_tokens": 5, "temperature": 0}
    with httpx.Client(timeout=60) as client:
        direct = client.post(f"{llama_server.url}/v1/completions", json=body).json()
        for headers in (
            {"authorization": "Bearer sk-team-b"},
            {"authorization": "Bearer sk-unmapped-secret"},
            {"authorization": "Bearer sk-team-b", "x-team": "research"},
            {},
        ):
            answer = client.post(f"{proxy.url}/v1/completions", json=body, headers=headers)
            assert answer.status_code == 200
            usage = answer.json()["usage"]  # cached_tokens differ from call to call
            assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
                direct["usage"]["prompt_tokens"],
                direct["usage"]["completion_tokens"],
            )
    events = proxy_events(kafka_bootstrap, proxy.env["KAFKA_TOPIC"], 4)
    tenants = sorted((e.tenant or "-") for e in events)
    hashed = [t for t in tenants if t.startswith("key-")]
    assert len(hashed) == 1
    assert "sk-unmapped-secret" not in hashed[0]
    assert sorted(set(tenants) - set(hashed)) == ["-", "research", "team-b"]
    assert {e.completion_tokens for e in events} == {direct["usage"]["completion_tokens"]}
    # Nothing the proxy logged holds a key.
    assert "sk-" not in proxy.log_path.read_text()


def test_models_is_forwarded_unchanged_without_an_event(
    llama_server: LlamaServer, proxy_factory: Callable[..., ProxyProcess]
) -> None:
    proxy = proxy_factory()
    with httpx.Client(timeout=30) as client:
        direct = client.get(f"{llama_server.url}/v1/models")
        proxied = client.get(f"{proxy.url}/v1/models")
    assert proxied.status_code == direct.status_code == 200
    # The same models; `created` is the time of the call, so it differs.
    assert [m["id"] for m in proxied.json()["data"]] == [m["id"] for m in direct.json()["data"]]
    assert proxy.metric("gpucost_proxy_events_total") == 0
