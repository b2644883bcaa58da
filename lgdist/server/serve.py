"""Running the app under uvicorn (``lgdist serve``)."""

from __future__ import annotations

import logging

from lgdist.server.auth import check_binding, keys_from_env

log = logging.getLogger("lgdist.server")


def serve(host: str = "127.0.0.1", port: int = 2024, *, log_level: str = "info") -> int:
    import uvicorn

    from lgdist.server.app import create_app

    keys = keys_from_env()
    check_binding(host, keys)
    app = create_app(api_keys=keys or None)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
    return 0
