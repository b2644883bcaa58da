"""What the API keeps about threads beyond the run store: metadata and
creation time (``lgdist_api_threads``), in the same database as the runs
and checkpoints, so every server replica sees the same threads.

A thread exists when it has a row here (created through the API) or in the
run store (started by ``Client`` or a queue message).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from lgdist.checkpoint.sql import blobs_table, checkpoints_table, writes_table
from lgdist.distributed.runs import runs_table, threads_table

metadata = sa.MetaData()

api_threads_table = sa.Table(
    "lgdist_api_threads",
    metadata,
    sa.Column("thread_id", sa.String(255), primary_key=True),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


class ThreadRecord(dict):
    """``thread_id``, ``metadata``, ``created_at``, ``updated_at``, ``status``,
    ``graph`` and ``active_run_id`` of one thread."""


class ApiStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ready = False
        self._lock = threading.Lock()
        if engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        self._insert = insert
        # Built once: the statement cache then compiles each query once.
        self._threads = self._select()

    def setup(self) -> None:
        with self._lock:
            if self._ready:
                return
            with self.engine.begin() as conn:
                if self.engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7718002)"))
                metadata.create_all(conn, checkfirst=True)
            self._ready = True

    def _conn(self) -> Any:
        if not self._ready:
            self.setup()
        return self.engine.begin()

    # -- reading --------------------------------------------------------------------
    def _select(self) -> Any:
        t, r = api_threads_table, threads_table
        # Threads known to either table: an outer join both ways, written as
        # a union of the two left joins (portable to SQLite).
        left = sa.select(
            t.c.thread_id.label("thread_id"),
            t.c.metadata.label("metadata"),
            t.c.created_at.label("created_at"),
            sa.func.coalesce(r.c.updated_at, t.c.updated_at).label("updated_at"),
            sa.func.coalesce(r.c.status, "idle").label("status"),
            r.c.graph.label("graph"),
            r.c.active_run_id.label("active_run_id"),
        ).select_from(t.outerjoin(r, r.c.thread_id == t.c.thread_id))
        right = sa.select(
            r.c.thread_id,
            sa.literal("{}").label("metadata"),
            r.c.updated_at.label("created_at"),
            r.c.updated_at,
            r.c.status,
            r.c.graph,
            r.c.active_run_id,
        ).where(~sa.exists().where(t.c.thread_id == r.c.thread_id))
        return sa.union_all(left, right).subquery("threads")

    @staticmethod
    def _record(row: Any) -> ThreadRecord:
        rec = ThreadRecord(row)
        rec["metadata"] = json.loads(rec["metadata"] or "{}")
        return rec

    def get(self, thread_id: str) -> Optional[ThreadRecord]:
        q = self._threads
        with self._conn() as conn:
            row = conn.execute(sa.select(q).where(q.c.thread_id == thread_id)).mappings().first()
        return self._record(row) if row else None

    def search(
        self,
        *,
        metadata: Optional[dict] = None,
        status: Optional[str] = None,
        ids: Optional[list[str]] = None,
        limit: Optional[int] = 10,
        offset: int = 0,
        sort_by: str = "created_at",
        sort_order: str = "desc",
    ) -> list[ThreadRecord]:
        """Threads matching every filter. Metadata is matched in Python:
        a JSON containment test that reads the same on SQLite and Postgres."""
        q = self._threads
        query = sa.select(q)
        if status:
            query = query.where(q.c.status == status)
        if ids:
            query = query.where(q.c.thread_id.in_(ids))
        column = q.c[sort_by] if sort_by in ("thread_id", "status", "created_at", "updated_at") else q.c.created_at
        query = query.order_by(column.asc() if sort_order == "asc" else column.desc(), q.c.thread_id)
        with self._conn() as conn:
            rows = [self._record(r) for r in conn.execute(query).mappings()]
        if metadata:
            rows = [r for r in rows if contains(r["metadata"], metadata)]
        rows = rows[offset:]
        return rows[:limit] if limit is not None else rows

    # -- writing --------------------------------------------------------------------
    def create(self, thread_id: str, metadata: dict, *, fresh: bool = False) -> bool:
        """Insert the thread; False when it exists already (in either table).
        ``fresh``: the id was just made up, so the run store cannot know it
        (one statement instead of two)."""
        if not fresh and self.get(thread_id) is not None:
            return False
        now = time.time()
        with self._conn() as conn:
            inserted = conn.execute(
                self._insert(api_threads_table)
                .values(thread_id=thread_id, metadata=json.dumps(metadata), created_at=now, updated_at=now)
                .on_conflict_do_nothing()
                .returning(api_threads_table.c.thread_id)
            ).first()
        return inserted is not None

    def ensure(self, thread_id: str, metadata: Optional[dict] = None) -> None:
        """Give a thread known only to the run store (or to nobody) its row."""
        now = time.time()
        with self._conn() as conn:
            conn.execute(
                self._insert(api_threads_table)
                .values(thread_id=thread_id, metadata=json.dumps(metadata or {}), created_at=now, updated_at=now)
                .on_conflict_do_nothing()
            )

    def merge_metadata(self, thread_id: str, extra: dict) -> dict:
        """Add ``extra`` to the thread's metadata (keys in ``extra`` win),
        giving the thread its row if it has none. One transaction."""
        now = time.time()
        with self._conn() as conn:
            conn.execute(
                self._insert(api_threads_table)
                .values(thread_id=thread_id, metadata="{}", created_at=now, updated_at=now)
                .on_conflict_do_nothing()
            )
            row = conn.execute(
                sa.select(api_threads_table.c.metadata)
                .where(api_threads_table.c.thread_id == thread_id)
                .with_for_update()
            ).first()
            merged = {**json.loads(row[0] if row else "{}"), **extra}
            conn.execute(
                sa.update(api_threads_table)
                .where(api_threads_table.c.thread_id == thread_id)
                .values(metadata=json.dumps(merged), updated_at=now)
            )
        return merged

    def delete(self, thread_id: str, *, with_checkpoints: bool = False) -> None:
        """Forget the thread, its runs and its run-store row; with
        ``with_checkpoints`` its checkpoints too, in the same transaction
        (a stateless run's thread, whose checkpoints this process never
        read, so the saver has nothing of it cached)."""
        tables = [api_threads_table, runs_table, threads_table]
        if with_checkpoints:
            tables += [checkpoints_table, blobs_table, writes_table]
        with self._conn() as conn:
            for table in tables:
                conn.execute(sa.delete(table).where(table.c.thread_id == thread_id))

    def delete_run(self, run_id: str) -> None:
        with self._conn() as conn:
            conn.execute(sa.delete(runs_table).where(runs_table.c.run_id == run_id))


def contains(haystack: Any, needle: Any) -> bool:
    """JSON containment (Postgres' ``@>``): every key of ``needle`` is in
    ``haystack`` with a containing value."""
    if isinstance(needle, dict):
        return isinstance(haystack, dict) and all(k in haystack and contains(haystack[k], v) for k, v in needle.items())
    return haystack == needle
