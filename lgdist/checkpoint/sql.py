"""Checkpoint store over SQLAlchemy Core, for SQLite and Postgres.

The tables and statements are in :mod:`lgdist.checkpoint.sql_tables`, the
read path in :mod:`lgdist.checkpoint.sql_reads`; this module writes. Every
write is one transaction (on Postgres, the local runtime's puts are one
statement, :mod:`lgdist.checkpoint.postgres_writes`). A put encodes its rows
first, so an unstorable value fails naming its key before anything is
written; the store remembers its latest puts' delta links and versions
bookkeeping, so the thread's next put needs no lookup of its parent.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

from langchain_core.runnables import RunnableConfig
from sqlalchemy.engine import Connection, Engine

from lgdist import serde
from lgdist.checkpoint import blob_cache, bookkeeping, delta, postgres_writes
from lgdist.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    Checkpoint,
    Precondition,
    PreconditionFailed,
    get_checkpoint_id,
    get_checkpoint_ns,
    get_thread_id,
)
from lgdist.checkpoint.blob_cache import BlobCache, cacheable_version
from lgdist.checkpoint.sql_chains import ABSENT
from lgdist.checkpoint.sql_reads import CheckpointReads, checkpoint_config
from lgdist.checkpoint.sql_schema import SQLDatabase, create_checkpoint_engine, retry_on_disconnect
from lgdist.checkpoint.sql_tables import (
    SETUP_LOCK_KEY,
    Statements,
    blobs_table,
    checkpoints_table,
    metadata_obj,
    writes_table,
)

__all__ = ["SQLCheckpointSaver", "create_checkpoint_engine", "checkpoints_table", "blobs_table", "writes_table"]

_LINKS_CACHED = 1024  # checkpoints whose delta links a store remembers
_BOOKKEEPING_CACHED = 64  # checkpoints whose whole versions bookkeeping a store remembers


class SQLCheckpointSaver(CheckpointReads, SQLDatabase, BaseCheckpointSaver):
    """Checkpoint store on SQLite or Postgres.

    ``SQLCheckpointSaver(url_or_engine)`` takes a database URL
    (``sqlite:///path.db``, ``sqlite://`` or ``":memory:"``,
    ``postgresql://user@host/db``) or a ready SQLAlchemy engine. Tables are
    created on first use (or by :meth:`setup`). The store is also a context
    manager that disposes the engine it created on exit.
    """

    tables = metadata_obj
    setup_lock_key = SETUP_LOCK_KEY

    def __init__(self, url_or_engine: Union[str, Engine]) -> None:
        SQLDatabase.__init__(self, url_or_engine)
        self._statements = Statements(self.engine.dialect.name)
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

    @retry_on_disconnect
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
            return checkpoint_config(planned.thread_id, planned.ns, checkpoint["id"])
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
        return checkpoint_config(planned.thread_id, planned.ns, checkpoint["id"])

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

    def plan_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: dict[str, Any],
        new_versions: dict[str, str],
        *,
        idempotency_key: str,
        previous: Optional[Checkpoint] = None,
        parent_writes: Sequence[tuple[str, Sequence[tuple[str, Any]]]] = (),
    ) -> "_PlannedPut":
        """Encode a keyed put now and store it later with
        :meth:`put_planned` (a worker's slice of steps, durability
        "async"). The next put of the thread finds this one's links and
        values as if it were stored."""
        planned = self._plan_put(config, checkpoint, metadata, new_versions, previous, parent_writes, idempotency_key)
        self._remember_put(planned)
        return planned

    @retry_on_disconnect
    def put_planned(
        self,
        planned: Sequence["_PlannedPut"],
        *,
        precondition: Optional[Precondition] = None,
        writes: Sequence[Callable[[], None]] = (),
        also: Sequence[Callable[[Connection], Any]] = (),
    ) -> bool:
        """Store planned puts (a chain of steps, each the child of the one
        before) and prepared writes (``prepare_put_writes``) in one
        transaction: ``precondition`` first, then the checkpoint rows, each
        once under its key (one statement), then their blobs and all the
        writes, then ``also`` (the caller's statements, e.g. run
        bookkeeping). False, storing nothing, when a key was stored already
        (another delivery stored the chain's first step)."""
        statements = self._statements
        rows = [p.row for p in planned]
        regular = [r for p in planned for r in p.regular] + [r for w in writes for r in w.rows[2]]  # type: ignore[attr-defined]
        special = [r for p in planned for r in p.special] + [r for w in writes for r in w.rows[3]]  # type: ignore[attr-defined]
        postgres = self.engine.dialect.name == "postgresql"
        # A precondition that can say itself as SQL joins the rows' statement.
        gate = getattr(precondition, "gate", None) if postgres else None
        with self._transaction() as conn:
            if precondition is not None and gate is None and not precondition(conn):
                conn.rollback()
                raise PreconditionFailed(planned[0].checkpoint["id"] if planned else "")
            blob_rows = [r for p in planned for r in p.blob_rows]
            if postgres:
                # One statement (see postgres_writes).
                _, answer, stored = postgres_writes.store_keyed_rows(
                    conn, rows, blob_rows, regular, special, gate=gate
                )
                if gate is not None and not precondition.answer(answer):  # type: ignore[union-attr]
                    conn.rollback()
                    raise PreconditionFailed(planned[0].checkpoint["id"] if planned else "")
                if stored != len(rows):
                    conn.rollback()
                    return False
            else:
                if rows and len(conn.execute(statements.insert_checkpoint_once, rows).all()) != len(rows):
                    conn.rollback()
                    return False
                if blob_rows:
                    conn.execute(statements.insert_blobs, blob_rows)
                self._insert_write_rows(conn, regular, special)
            for statements_of_caller in also:
                statements_of_caller(conn)
        return True

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
        inline, blob_channels = inline_values(checkpoint)
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

    @retry_on_disconnect
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

    @retry_on_disconnect
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


_INLINE_TYPES = (int, float, bool, type(None))
_INLINE_STR = 256  # longest string kept in the checkpoint row


def inline_values(checkpoint: Checkpoint) -> tuple[dict[str, Any], list[str]]:
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
