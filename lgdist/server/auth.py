"""API keys. Off when the server listens on a loopback address and no key
is configured; keys come from ``LGDIST_API_KEYS`` (comma-separated) and are
checked against the ``x-api-key`` header. A server bound to any other
address refuses to start without a key."""

from __future__ import annotations

import hmac
import ipaddress
import os
from typing import Iterable, Optional

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

API_KEYS_ENV = "LGDIST_API_KEYS"
HEADER = "x-api-key"
# Readiness probes carry no key; the inspector's page holds no data (its
# script asks for the key and sends it with every API call).
OPEN_PATHS = ("/ok", "/ui")


def keys_from_env(environ: Optional[dict] = None) -> list[str]:
    raw = (environ if environ is not None else os.environ).get(API_KEYS_ENV, "")
    return [k.strip() for k in raw.split(",") if k.strip()]


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AuthRequired(SystemExit):
    """Raised (exit status 2) when the server would listen on a non-loopback
    address without an API key."""


def check_binding(host: str, keys: Iterable[str]) -> None:
    if not is_loopback(host) and not list(keys):
        raise AuthRequired(
            f"refusing to serve on {host} without an API key: set {API_KEYS_ENV}=<key>[,<key>...] "
            "(clients send it as the x-api-key header), or bind to 127.0.0.1"
        )


class ApiKeyMiddleware(BaseHTTPMiddleware):
    def __init__(self, app, keys: list[str]) -> None:  # type: ignore[no-untyped-def]
        super().__init__(app)
        self.keys = [k.encode() for k in keys]

    async def dispatch(self, request: Request, call_next) -> Response:  # type: ignore[no-untyped-def]
        if request.url.path in OPEN_PATHS:
            return await call_next(request)
        given = (request.headers.get(HEADER) or "").encode()
        if not any(hmac.compare_digest(given, key) for key in self.keys):
            return JSONResponse({"detail": "Missing or invalid API key (x-api-key header)"}, status_code=401)
        return await call_next(request)
