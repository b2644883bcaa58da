"""Checkpoint store over SQLAlchemy Core, for SQLite and Postgres.

Three tables (prefix ``lgdist_``):

* ``lgdist_checkpoints`` - one row per checkpoint, its channel values left out;
  ``UNIQUE (thread_id, checkpoint_ns, idempotency_key)`` makes a duplicated
  step (a chord callback that runs twice) a no-op instead of a second row.
* ``lgdist_blobs`` - one row per ``(channel, version)``; a step writes blobs only
  for the channels in ``new_versions``, so unchanged state is never rewritten.
  A list that only grew since the parent checkpoint is stored as a delta (the
  appended items and ``base_version``, see :mod:`lgdist.checkpoint.delta`); the
  checkpoint row's ``value_chains`` says which rows rebuild it, so a read
  fetches every row it needs in one query.
* ``lgdist_writes`` - pending writes keyed by ``(checkpoint_id, task_id, idx)``;
  a task that runs twice leaves its first writes (insert-or-ignore), except the
  special channels of ``WRITES_IDX_MAP``, whose latest write wins (upsert).

Every write is one transaction; statements are built once per store so a step
costs SQLAlchemy's compiled-cache lookups, not statement construction.
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections import OrderedDict, defaultdict
from typing import Any, Callable, Iterator, NamedTuple, Optional, Sequence, Union

import sqlalchemy as sa
from langchain_core.runnables import RunnableConfig
from sqlalchemy.engine import Connection, Engine

from lgdist import serde
from lgdist.checkpoint import blob_cache, bookkeeping, delta, postgres_writes
from lgdist.checkpoint.blob_cache import MISSING, BlobCache, cacheable_version
from lgdist.checkpoint.sql_schema import SortedText, SQLDatabase, create_checkpoint_engine, dialect_insert
from lgdist.checkpoint.sql_chains import ABSENT, StoredRows, join_pieces, load_chains
from lgdist.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    Precondition,
    PreconditionFailed,
    Checkpoint,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_ns,
    get_thread_id,
)

__all__ = ["SQLCheckpointSaver", "create_checkpoint_engine"]

_Key = SortedText

metadata_obj = sa.MetaData()

checkpoints_table = sa.Table(
    "lgdist_checkpoints",
    metadata_obj,
    sa.Column("thread_id", _Key, primary_key=True),
    sa.Column("checkpoint_ns", _Key, primary_key=True),
    sa.Column("checkpoint_id", _Key, primary_key=True),
    sa.Column("parent_checkpoint_id", _Key, nullable=True),
    sa.Column("idempotency_key", _Key, nullable=True),
    sa.Column("checkpoint", sa.Text, nullable=False),
    sa.Column("metadata", sa.Text, nullable=False),
    # JSON {channel: delta.Link} for the list-valued channels: how their rows chain.
    sa.Column("value_chains", sa.Text, nullable=True),
    # JSON [{channel: value}, [channel, ...]]: small primitive values
    # (numbers, booleans, None, short strings) kept in the row itself, every
    # one the checkpoint has (changed or not), so reading them costs no blob
    # row, and the channels whose values are blobs; a channel with a version
    # in neither has no value (see _inline_hits, which also reads the older
    # {channel: [version, value]} form).
    sa.Column("inline_values", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.UniqueConstraint("thread_id", "checkpoint_ns", "idempotency_key", name="lgdist_checkpoints_idempotency"),
)

blobs_table = sa.Table(
    "lgdist_blobs",
    metadata_obj,
    sa.Column("thread_id", _Key, primary_key=True),
    sa.Column("checkpoint_ns", _Key, primary_key=True),
    sa.Column("channel", _Key, primary_key=True),
    sa.Column("version", _Key, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=True),
    # A delta row appends ``blob``'s items to the value at ``base_version``;
    # ``level`` is its level in the chain (NULL for a full value).
    sa.Column("base_version", sa.Text, nullable=True),
    sa.Column("level", sa.SmallInteger, nullable=True),
    # Fetches one level of a chain by version range (delta.chain_ranges).
    sa.Index("lgdist_blobs_chain", "thread_id", "checkpoint_ns", "channel", "level", "version"),
)

writes_table = sa.Table(
    "lgdist_writes",
    metadata_obj,
    sa.Column("thread_id", _Key, primary_key=True),
    sa.Column("checkpoint_ns", _Key, primary_key=True),
    sa.Column("checkpoint_id", _Key, primary_key=True),
    sa.Column("task_id", _Key, primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=True),
    sa.Column("task_path", sa.Text, nullable=False, server_default=""),
)

_LOAD_BATCH = 100  # checkpoints whose blobs and writes are fetched together
_IN_BATCH = 500  # values per IN (...) list
_LINKS_CACHED = 1024  # checkpoints whose delta links a store remembers
_BOOKKEEPING_CACHED = 64  # checkpoints whose whole versions bookkeeping a store remembers
_SETUP_LOCK_KEY = 0x6C676469737431  # pg advisory lock id serializing setup()


def _retry_on_disconnect(method: Callable) -> Callable:
    """Run a store operation again, once, when its connection turned out to
    be dead (SQLAlchemy then invalidates the pool, so the retry connects
    afresh). Every operation is one transaction and idempotent."""

    @functools.wraps(method)
    def retrying(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sa.exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return method(self, *args, **kwargs)

    return retrying


class _Statements:
    """Every statement a store runs, built once for its dialect."""

    def __init__(self, dialect: str) -> None:
        insert = dialect_insert(dialect)
        cp, bl, wr = checkpoints_table, blobs_table, writes_table
        p = sa.bindparam
        ins = insert(cp)
        self.upsert_checkpoint = ins.on_conflict_do_update(
            index_elements=[cp.c.thread_id, cp.c.checkpoint_ns, cp.c.checkpoint_id],
            set_={
                "parent_checkpoint_id": ins.excluded.parent_checkpoint_id,
                "checkpoint": ins.excluded.checkpoint,
                "metadata": ins.excluded.metadata,
                "value_chains": ins.excluded.value_chains,
                "inline_values": ins.excluded.inline_values,
            },
        )
        # No conflict target: the row is skipped when EITHER the id or the
        # idempotency key already exists. RETURNING (not rowcount, which the
        # psycopg dialect reports as -1 here) says whether it was inserted.
        self.insert_checkpoint_once = insert(cp).on_conflict_do_nothing().returning(cp.c.checkpoint_id)
        self.insert_blobs = insert(bl).on_conflict_do_nothing()
        self.insert_writes = insert(wr).on_conflict_do_nothing()
        ins = insert(wr)
        self.upsert_writes = ins.on_conflict_do_update(
            index_elements=[wr.c.thread_id, wr.c.checkpoint_ns, wr.c.checkpoint_id, wr.c.task_id, wr.c.idx],
            set_={name: ins.excluded[name] for name in ("channel", "type", "blob", "task_path")},
        )
        self.checkpoint_columns = [
            cp.c.thread_id, cp.c.checkpoint_ns, cp.c.checkpoint_id,
            cp.c.parent_checkpoint_id, cp.c.checkpoint, cp.c.metadata, cp.c.value_chains, cp.c.inline_values,
        ]  # fmt: skip
        in_thread = sa.and_(cp.c.thread_id == p("thread_id"), cp.c.checkpoint_ns == p("ns"))
        self.select_checkpoint = sa.select(*self.checkpoint_columns).where(
            in_thread, cp.c.checkpoint_id == p("checkpoint_id")
        )
        self.select_latest = (
            sa.select(*self.checkpoint_columns).where(in_thread).order_by(cp.c.checkpoint_id.desc()).limit(1)
        )
        self.select_value_chains = sa.select(cp.c.value_chains).where(
            in_thread, cp.c.checkpoint_id == p("checkpoint_id")
        )
        self.select_writes = (
            sa.select(wr.c.checkpoint_id, wr.c.task_id, wr.c.channel, wr.c.type, wr.c.blob)
            .where(
                wr.c.thread_id == p("thread_id"),
                wr.c.checkpoint_ns == p("ns"),
                wr.c.checkpoint_id.in_(p("ids", expanding=True)),
            )
            .order_by(wr.c.checkpoint_id, wr.c.task_id, wr.c.idx)  # pending_writes order
        )
        self.delete_thread = [sa.delete(t).where(t.c.thread_id == p("thread_id")) for t in (cp, bl, wr)]
        # The rows a delta row's bookkeeping is rebuilt from: its base and
        # the bases before it, ``depth`` rows along parent_checkpoint_id.
        self.select_chain = sa.text(
            "WITH RECURSIVE chain(checkpoint_id, parent_checkpoint_id, checkpoint, n) AS ("
            " SELECT checkpoint_id, parent_checkpoint_id, checkpoint, 1 FROM lgdist_checkpoints"
            " WHERE thread_id = :thread_id AND checkpoint_ns = :ns AND checkpoint_id = :base"
            " UNION ALL"
            " SELECT c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint, chain.n + 1"
            " FROM lgdist_checkpoints c JOIN chain ON c.checkpoint_id = chain.parent_checkpoint_id"
            " WHERE c.thread_id = :thread_id AND c.checkpoint_ns = :ns AND chain.n < :depth"
            ") SELECT checkpoint_id, checkpoint FROM chain"
        )


class SQLCheckpointSaver(SQLDatabase, BaseCheckpointSaver):
    """Checkpoint store on SQLite or Postgres.

    ``SQLCheckpointSaver(url_or_engine)`` takes a database URL
    (``sqlite:///path.db``, ``sqlite://`` or ``":memory:"``,
    ``postgresql://user@host/db``) or a ready SQLAlchemy engine. Tables are
    created on first use (or by :meth:`setup`). The store is also a context
    manager that disposes the engine it created on exit.
    """

    tables = metadata_obj
    setup_lock_key = _SETUP_LOCK_KEY

    def __init__(self, url_or_engine: Union[str, Engine]) -> None:
        SQLDatabase.__init__(self, url_or_engine)
        self._statements = _Statements(self.engine.dialect.name)
        # Delta links of recently stored checkpoints, so the next step's put
        # needs no lookup of its parent's (rows are immutable once written).
        self._links: OrderedDict[tuple[str, str, str], dict[str, delta.Link]] = OrderedDict()
        self._links_lock = threading.Lock()
        # Whole versions bookkeeping of recently stored or read checkpoints:
        # a put whose parent is here stores only what changed (bookkeeping.py).
        self._bookkeeping: OrderedDict[tuple[str, str, str], bookkeeping.Bookkeeping] = OrderedDict()
        # Decoded values, shared by the process's stores; the scope keeps two
        # stores (two databases) apart.
        self._blob_cache: Optional[BlobCache] = blob_cache.CACHE
        self._cache_scope = uuid.uuid4().hex

    # -------------------------------------------------------------- reads
    @_retry_on_disconnect
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
            rows = [row for row in rows if _matches(serde.loads(row.metadata), filter)]
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
            hits = _inline_hits(getattr(row, "inline_values", None), versions)
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
            for part in _chunks(ids, _IN_BATCH) if with_writes else ():
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
                    config=_config(thread_id, ns, row.checkpoint_id),
                    checkpoint=checkpoint,
                    metadata=serde.loads(row.metadata),
                    parent_config=_config(thread_id, ns, parent) if parent else None,
                    pending_writes=writes.get((thread_id, ns, row.checkpoint_id), []),
                )
            )
        return result

    # ------------------------------------------------------------- writes
    @_retry_on_disconnect
    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: dict[str, Any],
        new_versions: dict[str, str],
        *,
        idempotency_key: Optional[str] = None,
        previous: Optional[Checkpoint] = None,
        precondition: Optional[Precondition] = None,
        parent_writes: Sequence[tuple[str, Sequence[tuple[str, Any]]]] = (),
    ) -> Optional[RunnableConfig]:
        planned = self._plan_put(config, checkpoint, metadata, new_versions, previous, parent_writes, idempotency_key)
        if idempotency_key is None and precondition is None:
            self._store_rows([planned.row], planned.blob_rows, planned.regular, planned.special)
            self._remember_put(planned)
            return _config(planned.thread_id, planned.ns, checkpoint["id"])
        statements = self._statements
        with self._transaction() as conn:
            if precondition is not None and not precondition(conn):
                conn.rollback()
                raise PreconditionFailed(checkpoint["id"])
            if idempotency_key is None:
                conn.execute(statements.upsert_checkpoint, planned.row)
            elif conn.execute(statements.insert_checkpoint_once, planned.row).first() is None:
                # This step was already stored (same key, or same id): write
                # nothing. The checkpoint row goes first so no blob was written.
                conn.rollback()
                return None
            if planned.blob_rows:
                # Blob keys carry a random version suffix, so an existing row is
                # the same value written by a retried step: keep it.
                conn.execute(statements.insert_blobs, planned.blob_rows)
            self._insert_write_rows(conn, planned.regular, planned.special)
        self._remember_put(planned)
        return _config(planned.thread_id, planned.ns, checkpoint["id"])

    def prepare_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: dict[str, Any],
        new_versions: dict[str, str],
        *,
        previous: Optional[Checkpoint] = None,
        parent_writes: Sequence[tuple[str, Sequence[tuple[str, Any]]]] = (),
    ) -> Callable[[], None]:
        """Encode a checkpoint now and return the call that stores it (see
        ``BaseCheckpointSaver.prepare_put``): the next put of the thread
        already finds this one's delta links, and its values are cached."""
        planned = self._plan_put(config, checkpoint, metadata, new_versions, previous, parent_writes, None)
        self._remember_put(planned)
        return _PreparedRows(self, [planned.row], planned.blob_rows, planned.regular, planned.special)

    def _plan_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: dict[str, Any],
        new_versions: dict[str, str],
        previous: Optional[Checkpoint],
        parent_writes: Sequence[tuple[str, Sequence[tuple[str, Any]]]],
        idempotency_key: Optional[str],
    ) -> "_PlannedPut":
        """The rows a put stores, encoded (an unstorable value fails here,
        naming its key, before anything is written)."""
        thread_id, ns = get_thread_id(config), get_checkpoint_ns(config)
        regular, special = self._write_rows(config, parent_writes) if parent_writes else ([], [])
        parent_id = get_checkpoint_id(config)
        # Deltas need the parent's links and its values; ``previous`` must be
        # that parent (its versions may already be bumped by the caller, so the
        # stored links, not previous["channel_versions"], name the bases).
        parent_links: dict[str, delta.Link] = {}
        previous_values: dict[str, Any] = {}
        if previous is not None and parent_id is not None and previous.get("id") == parent_id:
            previous_values = previous.get("channel_values") or {}
            if any(type(v) is list for v in previous_values.values()):
                parent_links = self._parent_links(thread_id, ns, parent_id)
        # The local runtime's rows (no idempotency key) store only what changed
        # in the versions bookkeeping when the parent's is known; the
        # workers' rows are whole, so a worker reads a step in one row.
        known = self._remembered_bookkeeping((thread_id, ns, parent_id)) if idempotency_key is None else None
        body, kept = bookkeeping.encode(checkpoint, parent_id, known)
        inline, blob_channels = _inline_values(checkpoint)
        # Only channels with a value kept as a blob need a row.
        stored_as_blobs = set(blob_channels)
        new_versions = {c: v for c, v in new_versions.items() if c in stored_as_blobs}
        blobs, links = delta.plan_blobs(checkpoint, new_versions, parent_links, previous_values)
        blob_rows = [
            {"thread_id": thread_id, "checkpoint_ns": ns, "channel": b.channel, "version": b.version,
             "type": b.type, "blob": b.blob, "base_version": b.base, "level": b.level}
            for b in blobs
        ]  # fmt: skip
        row = {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": parent_id,
            "idempotency_key": idempotency_key,
            "checkpoint": serde.dumps_checkpoint(body).decode(),
            "metadata": serde.dumps_key("metadata", metadata).decode(),
            "value_chains": serde.dumps(delta.links_to_json(links)).decode() if links else None,
            "inline_values": json.dumps([inline, blob_channels]),
        }
        return _PlannedPut(thread_id, ns, checkpoint, row, blob_rows, regular, special, blobs, links, kept)

    @_retry_on_disconnect
    def _store_rows(self, checkpoints: list[dict], blobs: list[dict], regular: list[dict], special: list[dict]) -> None:
        """Store checkpoint rows (without idempotency key), blobs and writes,
        in order: on Postgres one statement in autocommit (one round trip,
        atomic as any single statement), elsewhere one transaction."""
        if self.engine.dialect.name == "postgresql":
            with self._connection() as conn:
                postgres_writes.store_rows(
                    conn.execution_options(isolation_level="AUTOCOMMIT"), checkpoints, blobs, regular, special
                )
            return
        with self._transaction() as conn:
            if checkpoints:
                conn.execute(self._statements.upsert_checkpoint, checkpoints)
            if blobs:
                conn.execute(self._statements.insert_blobs, blobs)
            self._insert_write_rows(conn, regular, special)

    def _remember_put(self, planned: "_PlannedPut") -> None:
        self._remember_bookkeeping((planned.thread_id, planned.ns, planned.checkpoint["id"]), planned.kept)
        self._remember_links(planned.thread_id, planned.ns, planned.checkpoint["id"], planned.links)
        self._cache_written(planned.thread_id, planned.ns, planned.checkpoint, planned.blobs)

    def _cache_written(self, thread_id: str, ns: str, checkpoint: Checkpoint, blobs: Sequence[delta.Blob]) -> None:
        """Values just stored are known decoded: the next restore of this
        thread in this process reads none of them."""
        cache, scope = self._blob_cache, self._cache_scope
        if cache is None:
            return
        values = checkpoint.get("channel_values") or {}
        for b in blobs:
            if not cacheable_version(b.version):
                continue
            size = len(b.blob or b"")
            if b.base is not None:
                # A delta row holds the tail only; the value's size is its base's plus the tail.
                size += cache.size_of((thread_id, ns, b.channel, b.base, scope)) or 0
            cache.put((thread_id, ns, b.channel, b.version, scope), values.get(b.channel, ABSENT), size)

    def _parent_links(self, thread_id: str, ns: str, parent_id: str) -> dict[str, delta.Link]:
        """The links stored with the parent checkpoint: from this store's
        cache (a thread's last put), else one primary-key lookup."""
        key = (thread_id, ns, parent_id)
        with self._links_lock:
            cached = self._links.get(key)
        if cached is not None:
            return cached
        params = {"thread_id": thread_id, "ns": ns, "checkpoint_id": parent_id}
        # A read of its own, before the write transaction: a SQLite write
        # transaction that starts with a read cannot always upgrade to a write.
        with self._connection() as conn:
            stored = conn.execute(self._statements.select_value_chains, params).scalar()
        return delta.links_from_json(serde.loads(stored) if stored else None)

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

    def _remembered_bookkeeping(self, key: tuple[str, str, Optional[str]]) -> Optional[bookkeeping.Bookkeeping]:
        with self._links_lock:
            return self._bookkeeping.get(key)  # type: ignore[arg-type]

    def _remember_bookkeeping(self, key: tuple[str, str, str], kept: bookkeeping.Bookkeeping) -> None:
        with self._links_lock:
            self._bookkeeping[key] = kept
            self._bookkeeping.move_to_end(key)
            while len(self._bookkeeping) > _BOOKKEEPING_CACHED:
                self._bookkeeping.popitem(last=False)

    def _remember_links(self, thread_id: str, ns: str, checkpoint_id: str, links: dict[str, delta.Link]) -> None:
        with self._links_lock:
            self._links[(thread_id, ns, checkpoint_id)] = links
            self._links.move_to_end((thread_id, ns, checkpoint_id))
            while len(self._links) > _LINKS_CACHED:
                self._links.popitem(last=False)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self.prepare_put_writes(config, writes, task_id, task_path)()

    def prepare_put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> Callable[[], None]:
        """Encode a task's writes now; the returned call stores them."""
        regular, special = self._write_rows(config, [(task_id, writes)], task_path)
        return _PreparedRows(self, [], [], regular, special)

    def _write_rows(
        self, config: RunnableConfig, tasks: Sequence[tuple[str, Sequence[tuple[str, Any]]]], task_path: str = ""
    ) -> tuple[list[dict], list[dict]]:
        thread_id, ns = get_thread_id(config), get_checkpoint_ns(config)
        checkpoint_id = get_checkpoint_id(config)
        regular, special = [], []
        for task_id, writes in tasks:
            for idx, (channel, value) in enumerate(writes):
                type_, blob = serde.serialize_value(value, channel)
                row = {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id,
                       "task_id": task_id, "idx": WRITES_IDX_MAP.get(channel, idx), "channel": channel,
                       "type": type_, "blob": blob, "task_path": task_path}  # fmt: skip
                (special if channel in WRITES_IDX_MAP else regular).append(row)
        return regular, special

    def _insert_write_rows(self, conn: Connection, regular: list[dict], special: list[dict]) -> None:
        # A task that runs twice keeps its first writes; special channels
        # (error, interrupt, resume, ...) keep the latest.
        if regular:
            conn.execute(self._statements.insert_writes, regular)
        if special:
            conn.execute(self._statements.upsert_writes, special)

    @_retry_on_disconnect
    def delete_thread(self, thread_id: str) -> None:
        with self._transaction() as conn:
            for stmt in self._statements.delete_thread:
                conn.execute(stmt, {"thread_id": str(thread_id)})
        with self._links_lock:
            for key in [k for k in self._links if k[0] == str(thread_id)]:
                del self._links[key]
            for key in [k for k in self._bookkeeping if k[0] == str(thread_id)]:
                del self._bookkeeping[key]
        if self._blob_cache is not None:
            self._blob_cache.drop_thread(str(thread_id))


_INLINE_TYPES = (int, float, bool, type(None))
_INLINE_STR = 256  # longest string kept in the checkpoint row


def _inline_values(checkpoint: Checkpoint) -> tuple[dict[str, Any], list[str]]:
    """The checkpoint's small primitive values, ``{channel: value}``, and its
    other channels that have a value (stored as blobs). A channel with a
    version in neither has no value (a trigger consumed earlier): it needs
    neither a blob row nor a word in the row, so the row grows with the
    state's keys, not with the graph's nodes."""
    values = checkpoint.get("channel_values") or {}
    inline: dict[str, Any] = {}
    blobs: list[str] = []
    versions = checkpoint.get("channel_versions") or {}
    for channel, value in values.items():
        if channel not in versions:
            continue
        kind = type(value)
        if kind in _INLINE_TYPES or (kind is str and len(value) <= _INLINE_STR):
            inline[channel] = value
        else:
            blobs.append(channel)
    return inline, blobs


def _inline_hits(stored: Optional[str], versions: dict[str, Any]) -> dict[str, Any]:
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


class _PreparedRows:
    """Rows encoded by ``prepare_put`` / ``prepare_put_writes``, stored when
    called. Queued ones of one store combine into one statement or
    transaction (see lgdist.loop.write_behind)."""

    def __init__(self, store: SQLCheckpointSaver, checkpoints: list, blobs: list, regular: list, special: list) -> None:
        self.batch_key = store
        self.rows = (checkpoints, blobs, regular, special)

    def __call__(self) -> None:
        if any(self.rows):
            self.batch_key._store_rows(*self.rows)

    def combine(self, later: Sequence["_PreparedRows"]) -> "_PreparedRows":
        """One write storing this one's rows and then ``later``'s."""
        rows = tuple([*mine] for mine in self.rows)
        for other in later:
            for into, more in zip(rows, other.rows):
                into.extend(more)
        return _PreparedRows(self.batch_key, *rows)


class _PlannedPut(NamedTuple):
    """A put's rows, encoded, and what the store remembers once it is made."""

    thread_id: str
    ns: str
    checkpoint: Checkpoint
    row: dict
    blob_rows: list[dict]
    regular: list[dict]
    special: list[dict]
    blobs: list[delta.Blob]
    links: dict[str, delta.Link]
    kept: bookkeeping.Bookkeeping


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}


def _matches(metadata: dict[str, Any], filter: dict[str, Any]) -> bool:
    return all(metadata.get(key) == value for key, value in filter.items())


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

