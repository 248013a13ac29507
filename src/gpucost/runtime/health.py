"""The processor's HTTP face: `/health` (alive), `/ready` (why not ready), `/metrics`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from gpucost.runtime.metrics import Metrics

ReadinessProbe = Callable[[], tuple[bool, dict[str, Any]]]


def create_app(readiness: ReadinessProbe, metrics: Metrics) -> FastAPI:
    app = FastAPI(title="gpucost processor", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    def health() -> dict[str, str]:
        # Trivial on purpose: the container healthcheck asks "is the process serving?".
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> JSONResponse:
        ok, checks = readiness()
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the processor's event loop. The processor owns SIGTERM (it must drain
    and commit first), so uvicorn must not install handlers that re-raise the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(app: FastAPI, host: str, port: int) -> EmbeddedServer:
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    return EmbeddedServer(config)
