"""The batch skeleton every lgdist store shares: validate the ops, embed what
the puts index and what the searches ask (sync or async), then hand the ops
and the vectors to the store's one I/O method, ``_execute``.

Within a batch, reads (get, search, list) see the store as it was before
the batch; of several puts to one item the last wins. Vectors are computed
before any I/O, so a slow embedding never holds a database transaction.
"""

from __future__ import annotations

import asyncio
import threading
import time
from abc import abstractmethod
from typing import Iterable, Optional

from lgdist.store.base import BaseStore, IndexConfig, Op, PutOp, Result, SearchOp, TTLConfig, validate_op
from lgdist.store.embed import as_embeddings, texts_at_path

__all__ = ["IndexedStore", "Embedded", "last_puts"]

ItemKey = tuple[tuple[str, ...], str]


class Embedded:
    """The vectors of one batch: per put item ``{field path: vector}``, per query its vector."""

    def __init__(self) -> None:
        self.fields: dict[ItemKey, dict[str, list[float]]] = {}
        self.queries: dict[str, list[float]] = {}


def last_puts(ops: list[Op]) -> dict[ItemKey, PutOp]:
    """The put that wins for each item written in the batch (the last one)."""
    puts: dict[ItemKey, PutOp] = {}
    for op in ops:
        if isinstance(op, PutOp):
            puts.pop((op.namespace, op.key), None)  # keep the order of the last writes
            puts[(op.namespace, op.key)] = op
    return puts


class IndexedStore(BaseStore):
    """A store with optional semantic search (``index``) and expiry (``ttl``)."""

    supports_ttl = True

    def __init__(self, *, index: Optional[IndexConfig] = None, ttl: Optional[TTLConfig] = None) -> None:
        self.index_config: Optional[IndexConfig] = dict(index) if index else None  # type: ignore[assignment]
        self.embeddings = as_embeddings(self.index_config.get("embed")) if self.index_config else None
        self.index_fields: list[str] = list((self.index_config or {}).get("fields") or ["$"])
        self.ttl_config: Optional[TTLConfig] = dict(ttl) if ttl else None  # type: ignore[assignment]
        self._sweeper: Optional[threading.Thread] = None
        self._sweeper_stop = threading.Event()

    # -- embedding -------------------------------------------------------------------
    def _texts(self, ops: list[Op]) -> tuple[list[tuple[ItemKey, str, str]], list[str]]:
        """What to embed: ``(item, field path, text)`` per indexed field of the
        winning puts, and the distinct queries of the searches."""
        if self.embeddings is None:
            return [], []
        documents = []
        for item_key, op in last_puts(ops).items():
            if op.value is None or op.index is False:
                continue
            for path in self.index_fields if op.index is None else op.index:
                texts = texts_at_path(op.value, path)
                if len(texts) == 1:
                    documents.append((item_key, path, texts[0]))
                else:  # one vector per element, as "path.0", "path.1", ...
                    documents.extend((item_key, f"{path}.{i}", text) for i, text in enumerate(texts))
        queries = list(dict.fromkeys(op.query for op in ops if isinstance(op, SearchOp) and op.query))
        return documents, queries

    @staticmethod
    def _collect(documents: list[tuple[ItemKey, str, str]], vectors: list[list[float]],
                 queries: list[str], query_vectors: list[list[float]]) -> Embedded:  # fmt: skip
        if len(vectors) != len(documents):
            raise ValueError(f"the embedding returned {len(vectors)} vectors for {len(documents)} texts")
        embedded = Embedded()
        for (item_key, path, _), vector in zip(documents, vectors):
            embedded.fields.setdefault(item_key, {})[path] = [float(x) for x in vector]
        embedded.queries = {q: [float(x) for x in v] for q, v in zip(queries, query_vectors)}
        return embedded

    def _prepare(self, ops: Iterable[Op]) -> list[Op]:
        ops = list(ops)
        for op in ops:
            validate_op(op)
        return ops

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = self._prepare(ops)
        documents, queries = self._texts(ops)
        vectors = self.embeddings.embed_documents([d[2] for d in documents]) if documents else []  # type: ignore[union-attr]
        query_vectors = [self.embeddings.embed_query(q) for q in queries]  # type: ignore[union-attr]
        return self._execute(ops, self._collect(documents, vectors, queries, query_vectors))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        ops = self._prepare(ops)
        documents, queries = self._texts(ops)
        vectors = await self.embeddings.aembed_documents([d[2] for d in documents]) if documents else []  # type: ignore[union-attr]
        query_vectors = list(await asyncio.gather(*(self.embeddings.aembed_query(q) for q in queries)))  # type: ignore[union-attr]
        return await asyncio.to_thread(self._execute, ops, self._collect(documents, vectors, queries, query_vectors))

    @abstractmethod
    def _execute(self, ops: list[Op], embedded: Embedded) -> list[Result]:
        """Run the reads of ``ops`` against the stored state, then the
        winning puts (with ``embedded.fields``); one result per op."""

    # -- expiry ----------------------------------------------------------------------
    @property
    def _omit_expired(self) -> bool:
        return bool((self.ttl_config or {}).get("omit_expired", False))

    @staticmethod
    def _expiry(ttl_minutes: Optional[float], now: float) -> Optional[float]:
        return None if ttl_minutes is None else now + float(ttl_minutes) * 60.0

    @abstractmethod
    def sweep_ttl(self) -> int:
        """Delete the expired items now; returns how many were deleted."""

    async def asweep_ttl(self) -> int:
        return await asyncio.to_thread(self.sweep_ttl)

    def start_ttl_sweeper(self, sweep_interval_minutes: Optional[float] = None) -> threading.Thread:
        """Delete expired items every ``sweep_interval_minutes`` (from the
        ttl config when not given, else 5) in a daemon thread, until
        :meth:`stop_ttl_sweeper`."""
        if self._sweeper is not None and self._sweeper.is_alive():
            return self._sweeper
        minutes = sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes") or 5
        self._sweeper_stop.clear()

        def sweep_forever() -> None:
            while not self._sweeper_stop.wait(float(minutes) * 60.0):
                self.sweep_ttl()

        self._sweeper = threading.Thread(target=sweep_forever, name=f"{type(self).__name__}-ttl-sweeper", daemon=True)
        self._sweeper.start()
        return self._sweeper

    def stop_ttl_sweeper(self, timeout: Optional[float] = None) -> bool:
        """Stop the sweeper thread; returns whether it ended within ``timeout``."""
        self._sweeper_stop.set()
        if self._sweeper is None:
            return True
        self._sweeper.join(timeout)
        return not self._sweeper.is_alive()

    @staticmethod
    def _now() -> float:
        return time.time()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(index={'on' if self.embeddings else 'off'})"

