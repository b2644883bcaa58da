"""``InMemoryStore``: the long-term memory store in a dict (one process;
lost when it exits). For several processes or workers use the SQL store."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

from lgdist.store.base import GetOp, IndexConfig, Item, ListNamespacesOp, Op, Result, SearchOp, TTLConfig
from lgdist.store.indexed import Embedded, IndexedStore, last_puts
from lgdist.store.matching import in_prefix, matches_filter, page, rank, select_namespaces

__all__ = ["InMemoryStore"]


@dataclass
class _Entry:
    item: Item
    vectors: dict[str, list[float]] = field(default_factory=dict)
    ttl_minutes: Optional[float] = None
    expires_at: Optional[float] = None


class InMemoryStore(IndexedStore):
    """``InMemoryStore(index={"dims": ..., "embed": ..., "fields": [...]}, ttl={...})``.

    Searches without a query list items in the order they were first put.
    """

    def __init__(self, *, index: Optional[IndexConfig] = None, ttl: Optional[TTLConfig] = None) -> None:
        super().__init__(index=index, ttl=ttl)
        self._data: dict[tuple[str, ...], dict[str, _Entry]] = {}
        self._lock = threading.RLock()

    def _live(self, entry: _Entry, now: float) -> bool:
        return not (self._omit_expired and entry.expires_at is not None and entry.expires_at <= now)

    def _touch(self, entry: _Entry, now: float, refresh: bool) -> None:
        if refresh and entry.ttl_minutes is not None:
            entry.expires_at = self._expiry(entry.ttl_minutes, now)

    def _execute(self, ops: list[Op], embedded: Embedded) -> list[Result]:
        now = self._now()
        with self._lock:
            results = [self._read(op, embedded, now) for op in ops]
            for (namespace, key), op in last_puts(ops).items():
                items = self._data.setdefault(namespace, {})
                if op.value is None:
                    items.pop(key, None)
                    if not items:
                        del self._data[namespace]
                    continue
                stamp = datetime.fromtimestamp(now, timezone.utc)
                previous = items.get(key)
                created = previous.item.created_at if previous else stamp
                item = Item(value=dict(op.value), key=key, namespace=namespace, created_at=created, updated_at=stamp)
                vectors = embedded.fields.get((namespace, key), {})
                items[key] = _Entry(item, vectors, op.ttl, self._expiry(op.ttl, now))
        return results

    def _read(self, op: Op, embedded: Embedded, now: float) -> Result:
        if isinstance(op, GetOp):
            entry = self._data.get(op.namespace, {}).get(op.key)
            if entry is None or not self._live(entry, now):
                return None
            self._touch(entry, now, op.refresh_ttl)
            return entry.item
        if isinstance(op, SearchOp):
            entries = [
                entry
                for namespace, items in self._data.items()
                if in_prefix(namespace, op.namespace_prefix)
                for entry in items.values()
                if self._live(entry, now) and matches_filter(entry.item.value, op.filter)
            ]
            query_vector = embedded.queries.get(op.query) if op.query else None
            if query_vector is not None:
                found = rank([(e.item, list(e.vectors.values())) for e in entries], query_vector, op.limit, op.offset)
            else:
                found = page([e.item for e in entries], op.limit, op.offset)
            returned = {(f.namespace, f.key) for f in found}
            for entry in entries:
                if (entry.item.namespace, entry.item.key) in returned:
                    self._touch(entry, now, op.refresh_ttl)
            return found
        if isinstance(op, ListNamespacesOp):
            namespaces = [ns for ns, items in self._data.items() if any(self._live(e, now) for e in items.values())]
            return select_namespaces(namespaces, op)
        return None  # a put: applied after the reads

    def sweep_ttl(self) -> int:
        now = self._now()
        deleted = 0
        with self._lock:
            for namespace in list(self._data):
                items = self._data[namespace]
                for key in [k for k, e in items.items() if e.expires_at is not None and e.expires_at <= now]:
                    del items[key]
                    deleted += 1
                if not items:
                    del self._data[namespace]
        return deleted
