"""A process-wide cache of decoded channel values.

A stored channel value never changes: it is keyed by ``(thread_id,
checkpoint_ns, channel, version)`` and versions carry a random suffix, so a
later value of the same channel always has another key (see
``BaseCheckpointSaver.get_next_version``). A decoded value found here is
therefore always the right one, and a warm restore reads only the
checkpoint's metadata and the channels that changed since this process last
saw the thread — on a worker, and in the local runtime across invokes of one
thread (a growing conversation decodes its history once, not every turn).

Bounded by an estimate of the values' size (their serialized length) and an
entry count, least recently used first out. Values are handed out and taken
in as shallow copies of lists, dicts and sets, so a reducer or node that
changes the container in place does not change the cache; items inside are
taken as immutable, as reducers and the delta store already take them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Hashable, Optional

__all__ = ["BlobCache", "CACHE", "MISSING", "cacheable_version"]

MISSING = object()  # get()'s answer for a key not cached

_DEFAULT_BYTES = int(os.environ.get("LGDIST_BLOB_CACHE_BYTES", str(128 * 1024 * 1024)))
_DEFAULT_ENTRIES = 200_000


def cacheable_version(version: Any) -> bool:
    """Whether ``version`` is one ``get_next_version`` made (a sortable
    counter and a random suffix): unique, so its value can be cached.
    Versions chosen by hand (``"1"``) may be reused for another value after
    a thread is deleted elsewhere; they are always read from the store."""
    return type(version) is str and len(version) == 49 and version[32] == "."


def _shallow_copy(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return list(value)
    if kind is dict:
        return dict(value)
    if kind is set:
        return set(value)
    return value


class BlobCache:
    """An LRU of decoded values, bounded by total estimated bytes."""

    def __init__(self, max_bytes: int = _DEFAULT_BYTES, max_entries: int = _DEFAULT_ENTRIES) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any:
        """The cached value (a shallow copy) or ``MISSING``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return MISSING
            self._entries.move_to_end(key)
            self.hits += 1
        return _shallow_copy(entry[0])

    def size_of(self, key: Hashable) -> Optional[int]:
        with self._lock:
            entry = self._entries.get(key)
        return entry[1] if entry is not None else None

    def put(self, key: Hashable, value: Any, size: int) -> None:
        if self.max_bytes <= 0 or size > self.max_bytes // 4:
            return  # one huge value must not flush everything else
        value = _shallow_copy(value)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._entries and (self._bytes > self.max_bytes or len(self._entries) > self.max_entries):
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def drop_thread(self, thread_id: str) -> None:
        """Forget a deleted thread's values (keys start with its id)."""
        with self._lock:
            for key in [k for k in self._entries if isinstance(k, tuple) and k and k[0] == thread_id]:
                self._bytes -= self._entries.pop(key)[1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)


# The cache every store of this process shares (keys name the thread, so
# two stores on different databases could only collide on a thread id and
# a random version suffix both: a store can opt out with ``blob_cache=None``).
CACHE = BlobCache()
