"""Reading checkpoints back from the SQL store's rows (the read half of
:class:`lgdist.checkpoint.sql.SQLCheckpointSaver`).

A checkpoint row names its channels' versions; values come from the row
itself (small primitives kept inline), from the process's cache of decoded
blobs, or from blob rows (delta chains followed in one query per thread);
a row that stores only the versions bookkeeping its step changed is
rebuilt from the rows before it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Iterator, Optional, Sequence

import sqlalchemy as sa
from langchain_core.runnables import RunnableConfig
from sqlalchemy.engine import Connection

from lgdist import serde
from lgdist.checkpoint import bookkeeping, delta
from lgdist.checkpoint.base import CheckpointTuple, get_checkpoint_id, get_checkpoint_ns, get_thread_id
from lgdist.checkpoint.blob_cache import MISSING, cacheable_version
from lgdist.checkpoint.sql_chains import ABSENT, StoredRows, chunks, join_pieces, load_chains
from lgdist.checkpoint.sql_schema import retry_on_disconnect
from lgdist.checkpoint.sql_tables import blobs_table, checkpoints_table

__all__ = ["CheckpointReads", "checkpoint_config", "inline_hits"]

_LOAD_BATCH = 100  # checkpoints whose blobs and writes are fetched together
_IN_BATCH = 500  # values per IN (...) list


class CheckpointReads:
    """``get_tuple``, ``list`` and the row decoding behind them, for a store
    that has ``_statements``, ``_connection()``, the decoded-blob cache and
    the bookkeeping/links memory of :class:`SQLCheckpointSaver`."""

    @retry_on_disconnect
    def get_tuple(self, config: RunnableConfig) -> Optional[CheckpointTuple]:
        params = {"thread_id": get_thread_id(config), "ns": get_checkpoint_ns(config)}
        checkpoint_id = get_checkpoint_id(config)
        with self._connection() as conn:
            if checkpoint_id is None:
                row = conn.execute(self._statements.select_latest, params).first()
            else:
                params["checkpoint_id"] = checkpoint_id
                row = conn.execute(self._statements.select_checkpoint, params).first()
            if row is None:
                return None
            tup = self._load_tuples(conn, [row])[0]
        # The caller may continue from here (a resume, a fork): its next put
        # then finds this checkpoint's links without a lookup.
        links = delta.links_from_json(serde.loads(row.value_chains) if row.value_chains else None)
        self._remember_links(row.thread_id, row.checkpoint_ns, row.checkpoint_id, links)
        return tup

    def list(
        self,
        config: Optional[RunnableConfig],
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[RunnableConfig] = None,
        limit: Optional[int] = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first; ``config=None`` lists every thread.
        ``filter`` matches metadata keys by equality."""
        cp = checkpoints_table
        stmt = sa.select(*self._statements.checkpoint_columns)
        if config is not None:
            configurable = config.get("configurable") or {}
            stmt = stmt.where(cp.c.thread_id == get_thread_id(config))
            if "checkpoint_ns" in configurable:
                stmt = stmt.where(cp.c.checkpoint_ns == configurable["checkpoint_ns"])
            if configurable.get("checkpoint_id") is not None:
                stmt = stmt.where(cp.c.checkpoint_id == configurable["checkpoint_id"])
        before_id = get_checkpoint_id(before) if before else None
        if before_id is not None:
            stmt = stmt.where(cp.c.checkpoint_id < before_id)
        # Checkpoint ids are time-ordered, so string order is history order.
        stmt = stmt.order_by(cp.c.checkpoint_id.desc(), cp.c.thread_id, cp.c.checkpoint_ns)
        if limit is not None and not filter:
            stmt = stmt.limit(limit)
        with self._connection() as conn:
            rows = conn.execute(stmt).all()
        if filter:
            rows = [row for row in rows if matches(serde.loads(row.metadata), filter)]
            rows = rows[:limit] if limit is not None else rows
        # Load values in batches and release the connection between them: the
        # caller may write to this store while iterating.
        for start in range(0, len(rows), _LOAD_BATCH):
            with self._connection() as conn:
                batch = self._load_tuples(conn, rows[start : start + _LOAD_BATCH])
            yield from batch

    @property
    def checkpoint_columns(self) -> list[Any]:
        """The columns :meth:`tuple_from_row` needs, for callers that select
        a checkpoint row together with rows of their own."""
        return self._statements.checkpoint_columns

    def reading(self) -> Any:
        """A connection for reads (a context manager): a caller that reads
        several things at once does it on one checkout."""
        return self._connection()

    def tuple_from_row(self, conn: Connection, row: Any, *, with_writes: bool = True) -> CheckpointTuple:
        """The checkpoint of a row selected with :attr:`checkpoint_columns`:
        its values (cached ones are not read) and, ``with_writes``, its
        pending writes. A caller that knows the checkpoint has none skips
        that statement."""
        tup = self._load_tuples(conn, [row], with_writes=with_writes)[0]
        links = delta.links_from_json(serde.loads(row.value_chains) if row.value_chains else None)
        self._remember_links(row.thread_id, row.checkpoint_ns, row.checkpoint_id, links)
        return tup

    def _load_tuples(self, conn: Connection, rows: Sequence[Any], *, with_writes: bool = True) -> list[CheckpointTuple]:
        """Rebuild checkpoints from their rows: values from the blobs named by
        channel_versions (following delta chains), pending writes from the
        writes table."""
        checkpoints = self._whole_checkpoints(conn, rows)
        links = [delta.links_from_json(serde.loads(row.value_chains) if row.value_chains else None) for row in rows]
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            groups[(row.thread_id, row.checkpoint_ns)].append(i)
        blobs: dict[tuple[str, str], StoredRows] = {}
        writes: dict[tuple[str, str, str], list[tuple[str, str, Any]]] = defaultdict(list)
        cache, scope = self._blob_cache, self._cache_scope
        # Decoded values this process has seen need no row: read only the rest.
        cached: list[dict[str, Any]] = []
        for row, checkpoint in zip(rows, checkpoints):
            versions = checkpoint.get("channel_versions") or {}
            hits = inline_hits(getattr(row, "inline_values", None), versions)
            if cache is not None:
                for channel, version in versions.items():
                    if channel not in hits and cacheable_version(version):
                        value = cache.get((row.thread_id, row.checkpoint_ns, channel, version, scope))
                        if value is not MISSING:
                            hits[channel] = value
            cached.append(hits)
        for (thread_id, ns), members in groups.items():
            wanted = []
            for i in members:
                versions = checkpoints[i].get("channel_versions") or {}
                missing = {c: v for c, v in versions.items() if c not in cached[i]}
                if missing:
                    wanted.append((missing, links[i]))
            blobs[(thread_id, ns)] = load_chains(conn, blobs_table, thread_id, ns, wanted) if wanted else {}
            params = {"thread_id": thread_id, "ns": ns}
            ids = [rows[i].checkpoint_id for i in members]
            for part in chunks(ids, _IN_BATCH) if with_writes else ():
                for w in conn.execute(self._statements.select_writes, {**params, "ids": part}):
                    writes[(thread_id, ns, w.checkpoint_id)].append(
                        (w.task_id, w.channel, serde.deserialize_value(w.type, w.blob))
                    )
        result = []
        for row, checkpoint, hits in zip(rows, checkpoints, cached):
            thread_id, ns = row.thread_id, row.checkpoint_ns
            stored = blobs[(thread_id, ns)]
            values = {}
            for channel, version in (checkpoint.get("channel_versions") or {}).items():
                if channel in hits:
                    if hits[channel] is not ABSENT:
                        values[channel] = hits[channel]
                    continue
                pieces, gap = delta.assemble(stored.get(channel, {}), str(version))
                if gap is None:  # a missing row leaves the channel out, as an empty one
                    value = join_pieces(pieces)
                    if value is not ABSENT:
                        values[channel] = value
                    if cache is not None and cacheable_version(version):
                        size = sum(len(blob or b"") for _, blob in pieces)
                        cache.put((thread_id, ns, channel, version, scope), value, size)
            checkpoint["channel_values"] = values
            parent = row.parent_checkpoint_id
            result.append(
                CheckpointTuple(
                    config=checkpoint_config(thread_id, ns, row.checkpoint_id),
                    checkpoint=checkpoint,
                    metadata=serde.loads(row.metadata),
                    parent_config=checkpoint_config(thread_id, ns, parent) if parent else None,
                    pending_writes=writes.get((thread_id, ns, row.checkpoint_id), []),
                )
            )
        return result

    def _whole_checkpoints(self, conn: Connection, rows: Sequence[Any]) -> list[dict]:
        """The checkpoints of ``rows`` (without values), delta rows rebuilt
        from their bases: from this store's memory, from ``rows``, else
        from the chain of rows before them (one query per chain)."""
        bodies = {(row.thread_id, row.checkpoint_ns, row.checkpoint_id): serde.loads(row.checkpoint) for row in rows}
        rebuilt: dict[tuple[str, str, str], bookkeeping.Bookkeeping] = {}

        def base(key: tuple[str, str, str], depth: int) -> bookkeeping.Bookkeeping:
            found = rebuilt.get(key) or self._remembered_bookkeeping(key)
            if found is not None:
                return found
            if key not in bodies:
                params = {"thread_id": key[0], "ns": key[1], "base": key[2], "depth": depth}
                for checkpoint_id, text in conn.execute(self._statements.select_chain, params):
                    bodies.setdefault((key[0], key[1], checkpoint_id), serde.loads(text))
                if key not in bodies:
                    raise ValueError(
                        f"checkpoint {key[2]!r} of thread {key[0]!r} is missing: a stored checkpoint's "
                        "versions are stored as changes to it"
                    )
            rebuilt[key] = whole(key)[1]
            return rebuilt[key]

        def whole(key: tuple[str, str, str]) -> tuple[dict, bookkeeping.Bookkeeping]:
            body = bodies[key]
            depth = bookkeeping.base_of(body)[1] if bookkeeping.is_delta(body) else 0
            return bookkeeping.decode(body, lambda base_id: base((key[0], key[1], base_id), depth))

        result = []
        for row in rows:
            key = (row.thread_id, row.checkpoint_ns, row.checkpoint_id)
            checkpoint, kept = whole(key)
            self._remember_bookkeeping(key, kept)
            result.append(checkpoint)
        return result


def inline_hits(stored: Optional[str], versions: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint row's ``inline_values`` says without a blob row:
    ``{channel: value}``, ``ABSENT`` for a channel with no value.

    Two formats: ``[{channel: value}, [blob channels]]`` (every channel with
    a version is inline, a blob or empty), and the older ``{channel:
    [version, value] or [version]}`` (each entry valid when its version is
    the checkpoint's; other channels are blobs), still read as written."""
    if not stored:
        return {}
    data = json.loads(stored)
    hits: dict[str, Any] = {}
    if type(data) is list:
        inline, blobs = data
        blobs = set(blobs)
        for channel in versions:
            if channel in inline:
                hits[channel] = inline[channel]
            elif channel not in blobs:
                hits[channel] = ABSENT
        return hits
    for channel, entry in data.items():
        if str(versions.get(channel)) == entry[0]:
            hits[channel] = entry[1] if len(entry) > 1 else ABSENT
    return hits


def checkpoint_config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}


def matches(metadata: dict[str, Any], filter: dict[str, Any]) -> bool:
    return all(metadata.get(key) == value for key, value in filter.items())
