"""The ASGI app: the LangGraph Server API over lgdist's distributed backend.

    lgdist serve --host 127.0.0.1 --port 2024

``create_app`` wires the routers (assistants, threads, runs), the error
handlers, API-key auth, ``/ok``, ``/info``, ``/metrics`` and ``/ui``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Optional

import anyio

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from lgdist.server import assistants, runs, store_api, threads, ui
from lgdist.server.auth import ApiKeyMiddleware
from lgdist.server.errors import install_error_handlers
from lgdist.server.metrics import ClusterCollector, render
from lgdist.server.service import ApiService
from lgdist.settings import Settings, get_settings

VERSION = "0.1.0"


# Threads for the blocking store calls of concurrent requests (anyio's
# default is 40); stream readers do not hold one.
WORKER_THREADS = 200


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
    yield


def create_app(settings: Optional[Settings] = None, *, api_keys: Optional[list[str]] = None) -> FastAPI:
    """The app. ``api_keys`` (if any) are required in ``x-api-key``."""
    settings = settings or get_settings()
    app = FastAPI(
        title="lgdist", version=VERSION, description="The LangGraph Server API, run by lgdist workers",
        lifespan=_lifespan,
    )  # fmt: skip
    app.state.service = ApiService(settings)
    install_error_handlers(app)
    if api_keys:
        app.add_middleware(ApiKeyMiddleware, keys=api_keys)

    @app.get("/ok", tags=["system"])
    def ok() -> dict:
        return {"ok": True}

    @app.get("/info", tags=["system"])
    def info() -> dict:
        return {
            "version": VERSION,
            "server": "lgdist",
            "graphs": app.state.service.graph_names(),
            "flags": {"assistants": True, "crons": False, "langsmith": False, "store": True},
        }

    collector = ClusterCollector(app.state.service)

    @app.get("/metrics", tags=["system"])
    def metrics() -> Response:
        return Response(render(collector), media_type=CONTENT_TYPE_LATEST)

    app.include_router(assistants.router)
    app.include_router(threads.router)
    app.include_router(runs.router)
    app.include_router(store_api.router)
    app.include_router(ui.router)
    return app
