"""The proxy's HTTP side: forward each OpenAI API call unchanged, meter it, hand off the event.

A streamed answer goes out event by event as the upstream sends it; a non-streamed one
is read whole (its `usage` is in the body) and sent on. Whatever happens (an upstream
error, an unreachable upstream, a client gone mid-stream) the request ends in exactly
one event, handed to the publisher without waiting for it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final, Protocol

import anyio
import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gpucost.runtime.events import TokenEvent, TokenEventV2
from gpucost.runtime.proxy.metering import (
    RequestInfo,
    StreamMeter,
    Usage,
    inspect_request,
    usage_of,
)
from gpucost.runtime.proxy.metrics import ProxyMetrics
from gpucost.runtime.proxy.sse import SseParser
from gpucost.runtime.proxy.tenant import TenantResolver
from gpucost.runtime.proxy.upstreams import Upstream, route

FORWARDED: Final = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models")
# Hop-by-hop headers (RFC 9110 7.6.1) and those the proxy recomputes.
_DROPPED_HEADERS: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
        "content-encoding",
    }
)


class EventSink(Protocol):
    def submit(self, event: TokenEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class Proxy:
    upstreams: list[Upstream]
    tenants: TenantResolver
    sink: EventSink
    metrics: ProxyMetrics
    client: httpx.AsyncClient
    producer: str

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        info = (
            inspect_request(body)
            if request.method == "POST"
            else RequestInfo(None, False, False, body, metered=False)
        )
        upstream = route(self.upstreams, info.model)
        tenant = self.tenants.tenant(request.headers)
        outgoing = self.client.build_request(
            request.method,
            upstream.url + request.url.path,
            params=request.url.query,
            headers=[*_forwardable(request.headers.items()), ("accept-encoding", "identity")],
            content=info.body,
        )
        try:
            answer = await self._send(outgoing)
        except httpx.HTTPError as error:
            self._finish(upstream, info, tenant, started, 502, None, None)
            message = f"upstream {upstream.name} unreachable: {type(error).__name__}"
            return JSONResponse(
                {"error": {"message": message, "type": "upstream_unreachable"}}, status_code=502
            )
        headers = dict(_forwardable(answer.headers.items()))
        if info.stream and answer.headers.get("content-type", "").startswith("text/event-stream"):
            return StreamingResponse(
                self._stream(answer, upstream, info, tenant, started),
                status_code=answer.status_code,
                headers=headers,
            )
        try:
            content = await answer.aread()
        except httpx.HTTPError:
            await answer.aclose()
            self._finish(upstream, info, tenant, started, 502, None, None)
            return JSONResponse({"error": {"message": "upstream answer cut short"}}, 502)
        payload = _json_object(content) if request.method == "POST" else None
        model = payload.get("model") if payload else None
        self._finish(
            upstream,
            info,
            tenant,
            started,
            answer.status_code,
            usage_of(payload),
            model if isinstance(model, str) else None,
        )
        return Response(content, status_code=answer.status_code, headers=headers)

    async def _send(self, outgoing: httpx.Request) -> httpx.Response:
        try:
            return await self.client.send(outgoing, stream=True)
        except httpx.RemoteProtocolError:
            # A pooled keep-alive connection the upstream had closed (llama.cpp's server
            # closes some after a stream, others when idle 5 s): nothing of the request
            # was answered, so it is sent once more on a fresh connection.
            self.metrics.upstream_retries.inc()
            return await self.client.send(outgoing, stream=True)

    async def _stream(
        self,
        answer: httpx.Response,
        upstream: Upstream,
        info: RequestInfo,
        tenant: str | None,
        started: float,
    ) -> AsyncIterator[bytes]:
        meter = StreamMeter(hide_usage_chunk=not info.client_wants_usage)
        parser = SseParser()
        finished = False
        status = answer.status_code
        try:
            try:
                async for chunk in answer.aiter_raw():
                    now = time.perf_counter()
                    for event in parser.feed(chunk):
                        if meter.observe(event, now):
                            yield event.raw
            except httpx.HTTPError:
                # The upstream broke off mid-answer: the client's stream ends here, and
                # the event says the answer failed (502) with the tokens seen so far.
                status = 502
            else:
                tail = parser.flush()
                if tail is not None and meter.observe(tail, time.perf_counter()):
                    yield tail.raw
            finished = True
        finally:
            # Runs on a normal end, an upstream failure and a client gone (cancellation):
            # the event first (no await), then the upstream connection, shielded so a
            # cancelled stream still closes it and the upstream stops generating.
            ttft = None if meter.first_token_at is None else meter.first_token_at - started
            self._finish(
                upstream,
                info,
                tenant,
                started,
                status,
                Usage(meter.prompt_tokens, meter.completion_tokens),
                meter.model,
                ttft_s=ttft,
                disconnected=not finished,
            )
            with anyio.CancelScope(shield=True):
                await answer.aclose()

    def _finish(
        self,
        upstream: Upstream,
        info: RequestInfo,
        tenant: str | None,
        started: float,
        status: int,
        usage: Usage | None,
        model: str | None,
        *,
        ttft_s: float | None = None,
        disconnected: bool = False,
    ) -> None:
        elapsed = time.perf_counter() - started
        self.metrics.requests.labels(str(status)).inc()
        self.metrics.latency.observe(elapsed)
        if not info.metered:
            return  # /v1/models: no tokens, nothing to price
        self.sink.submit(
            TokenEventV2(
                v=2,
                event_id=uuid.uuid4(),
                ts=time.time(),
                model=(model or info.model or "unknown")[:256],
                gpu=upstream.gpu,
                node=upstream.node,
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                latency_ms=round(elapsed * 1000, 3),
                producer=self.producer,
                tenant=tenant,
                status=status,
                ttft_ms=None if ttft_s is None else round(ttft_s * 1000, 3),
                disconnected=disconnected,
            )
        )


def build_app(proxy: Proxy) -> Starlette:
    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(proxy.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [Route(path, proxy.handle, methods=["GET", "POST"]) for path in FORWARDED]
    routes += [Route("/metrics", metrics), Route("/health", health)]
    return Starlette(routes=routes)


def _forwardable(items: object) -> list[tuple[str, str]]:
    return [(k, v) for k, v in items if k.lower() not in _DROPPED_HEADERS]  # type: ignore[attr-defined]


def _json_object(content: bytes) -> dict[str, object] | None:
    import json

    try:
        value = json.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
