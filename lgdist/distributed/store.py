"""The long-term memory store every worker's nodes share: one SQL store
(``LGDIST_STORE_URL``, by default the checkpoint database, on the same
engine), with semantic search when ``LGDIST_STORE_INDEX`` names an index
config (``module:attribute`` of a dict like ``{"dims": 1536, "embed": ...,
"fields": [...]}``; code is named by configuration, never by a message),
a default TTL (``LGDIST_STORE_TTL_MINUTES``) and, with
``LGDIST_STORE_SWEEP_MINUTES``, a thread per process that deletes expired
items."""

from __future__ import annotations

import importlib
from typing import Any, Optional

from sqlalchemy.engine import Engine

from lgdist.settings import Settings
from lgdist.store.sql import SQLStore

__all__ = ["open_shared_store", "load_index_config"]


def load_index_config(target: Optional[str]) -> Optional[dict[str, Any]]:
    """The index config ``module:attribute`` names (called if it is a factory)."""
    if not target:
        return None
    module_name, sep, attr = target.partition(":")
    if not sep or not attr:
        raise ValueError(f"bad LGDIST_STORE_INDEX {target!r}; expected module:attribute")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if callable(obj) and not isinstance(obj, dict):
        obj = obj()
    if not isinstance(obj, dict) or "embed" not in obj:
        raise TypeError(f"LGDIST_STORE_INDEX {target!r} must name an index config dict with an 'embed' entry")
    return obj


def open_shared_store(settings: Settings, checkpoint_engine: Engine) -> SQLStore:
    """The store for this process's nodes. Its tables are created on first
    use, so a graph that never touches the store costs nothing."""
    index = load_index_config(settings.store_index)
    ttl: dict[str, Any] = {}
    if settings.store_ttl_minutes:
        ttl["default_ttl"] = settings.store_ttl_minutes
    if settings.store_sweep_minutes:
        ttl["sweep_interval_minutes"] = settings.store_sweep_minutes
    url = settings.resolved_store_url()
    engine: Any = checkpoint_engine if url == settings.resolved_database_url() else url
    store = SQLStore(engine, index=index, ttl=ttl or None)
    if settings.store_sweep_minutes:
        # Each process sweeps: deleting expired rows twice is harmless.
        store.start_ttl_sweeper(settings.store_sweep_minutes)
    return store
