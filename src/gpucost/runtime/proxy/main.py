"""`gpucost-proxy`: the entry point. Settings come from the environment (PROXY_*)."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette

from gpucost.errors import ExitStatus, GpucostError
from gpucost.runtime.logs import configure_json_logging
from gpucost.runtime.proxy.app import Proxy, build_app
from gpucost.runtime.proxy.metrics import ProxyMetrics
from gpucost.runtime.proxy.publisher import EventPublisher
from gpucost.runtime.proxy.settings import ProxySettings, load_proxy_settings
from gpucost.runtime.proxy.spool import Spool
from gpucost.runtime.proxy.tenant import TenantResolver

log = logging.getLogger("gpucost.proxy")

USAGE = """usage: gpucost-proxy

An OpenAI-compatible reverse proxy: forwards /v1/chat/completions, /v1/completions,
/v1/embeddings and /v1/models to the upstreams and publishes one token event per request
to Kafka (spooled on disk while the broker is away). Serves /health and /metrics too.
Configured by the environment:
  PROXY_UPSTREAMS (required)     [NAME=]URL[@NODE[:GPU]],...  or a JSON list
  KAFKA_BOOTSTRAP (required)     KAFKA_TOPIC=token_usage
  PROXY_HOST=127.0.0.1  PROXY_PORT=8000
  PROXY_TENANT_HEADER            a header naming the tenant (else the API key's hash)
  PROXY_TENANT_KEYS_FILE         JSON {api key: tenant name}, mode 0600
  PROXY_SPOOL_DIR  PROXY_SPOOL_MAX_BYTES=67108864  PROXY_DELIVERY_TIMEOUT_S=5
"""


def build(settings: ProxySettings) -> tuple[Starlette, EventPublisher]:
    """The app and its publisher, from settings. Nothing is started yet."""
    metrics = ProxyMetrics()
    spool = Spool(settings.spool_dir, settings.spool_max_bytes)
    publisher = EventPublisher.connect(
        settings.kafka_bootstrap,
        settings.kafka_topic,
        spool,
        metrics,
        delivery_timeout_s=settings.delivery_timeout_s,
        retry_s=settings.replay_retry_s,
    )
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.upstream_timeout_s, connect=10.0),
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
    )
    proxy = Proxy(
        upstreams=settings.upstream_list,
        tenants=TenantResolver(settings.tenant_header, settings.key_names()),
        sink=publisher,
        metrics=metrics,
        client=client,
        producer=settings.producer,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        publisher.start()
        log.info(
            "proxy ready",
            extra={"upstreams": [u.name for u in proxy.upstreams], "spooled": len(spool)},
        )
        try:
            yield
        finally:
            await client.aclose()
            publisher.close(settings.delivery_timeout_s)
            log.info("proxy stopped", extra={"acked": publisher.acked, "spooled": len(spool)})

    app = build_app(proxy)
    app.router.lifespan_context = lifespan
    return app, publisher


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args:
        print(USAGE, end="")
        sys.exit(ExitStatus.OK if args[0] in ("-h", "--help") else ExitStatus.USAGE)
    try:
        settings = load_proxy_settings()
        configure_json_logging(settings.log_level)
        app, _publisher = build(settings)
    except GpucostError as error:
        print(f"gpucost-proxy: {error.one_line()}", file=sys.stderr)
        sys.exit(error.exit_status)
    # uvicorn stops gracefully on SIGTERM (the spool written), then raises the signal
    # again for the handler it found: make that one a no-op, so a clean stop exits 0.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        # One event loop, one process: the publisher thread and spool are per process.
        workers=1,
    )
    sys.exit(ExitStatus.OK)


if __name__ == "__main__":
    main()
