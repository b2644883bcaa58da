"""Errors as HTTP answers in the shape LangGraph's server sends: ``{"detail": "..."}`` with
its status codes (404 unknown thread, run or assistant; 409 busy thread
under ``reject``; 422 malformed body). Bad input never surfaces as a 500."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lgdist.errors import ApiError, GraphNotRegisteredError, LgdistError, RunNotFoundError, ThreadBusyError

log = logging.getLogger("lgdist.server")


def not_found(what: str) -> ApiError:
    return ApiError(404, what)


def _validation_text(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_text(exc)}, status_code=422)

    @app.exception_handler(json.JSONDecodeError)
    async def _bad_json(request: Request, exc: json.JSONDecodeError) -> JSONResponse:
        return JSONResponse({"detail": "Invalid JSON in request body"}, status_code=422)

    @app.exception_handler(ThreadBusyError)
    async def _busy(request: Request, exc: ThreadBusyError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(RunNotFoundError)
    async def _no_run(request: Request, exc: RunNotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(GraphNotRegisteredError)
    async def _no_graph(request: Request, exc: GraphNotRegisteredError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(LgdistError)
    async def _lgdist(request: Request, exc: LgdistError) -> JSONResponse:
        # Errors lgdist raises about the caller's input (bad update, unknown node).
        return JSONResponse({"detail": f"{type(exc).__name__}: {exc}"}, status_code=422)

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": f"{type(exc).__name__}: {exc}"}, status_code=422)
