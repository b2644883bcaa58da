"""``InMemoryCache``: a process-local cache (``lgdist.cache.memory``, as
``langgraph.cache.memory``)."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping, Optional, Sequence

from lgdist.cache.base import BaseCache, FullKey, Namespace


class InMemoryCache(BaseCache):
    """Entries in a dict, serialized on the way in (so a hit is a copy).
    ``clock`` returns seconds; expired entries are dropped when read."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._entries: dict[Namespace, dict[str, tuple[bytes, Optional[float]]]] = {}
        self._lock = threading.RLock()
        self._clock = clock

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        found: dict[FullKey, Any] = {}
        with self._lock:
            now = self._clock()
            for ns, key in keys:
                ns = Namespace(ns)
                entries = self._entries.get(ns)
                if not entries or key not in entries:
                    continue
                data, expires = entries[key]
                if expires is not None and now >= expires:
                    del entries[key]
                    continue
                found[(ns, key)] = self.loads(data)
        return found

    def set(self, pairs: Mapping[FullKey, tuple[Any, Optional[float]]]) -> None:
        with self._lock:
            now = self._clock()
            for (ns, key), (value, ttl) in pairs.items():
                expires = now + ttl if ttl is not None else None
                self._entries.setdefault(Namespace(ns), {})[key] = (self.dumps(value), expires)

    def clear(self, namespaces: Optional[Sequence[Namespace]] = None) -> None:
        with self._lock:
            if namespaces is None:
                self._entries.clear()
                return
            for ns in namespaces:
                self._entries.pop(Namespace(ns), None)
