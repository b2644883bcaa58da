"""Caches for node results (``cache_policy`` on ``add_node``, a cache given
to ``compile(cache=...)``), importable as from ``langgraph.cache``."""

from lgdist.cache.base import BaseCache, FullKey, Namespace

__all__ = ["BaseCache", "FullKey", "Namespace"]
