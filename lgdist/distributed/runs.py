"""The run store: tables and reads for runs, threads, delivery counters and
(for the embedded default) stream events, in the same database as the
checkpoints. Status changes are not made here but in
:mod:`lgdist.distributed.lifecycle`, the state machine that owns them.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from lgdist import serde
from lgdist.checkpoint.sql import create_checkpoint_engine
from lgdist.checkpoint.sql_schema import create_tables

if TYPE_CHECKING:
    from lgdist.distributed.lifecycle import RunStatus

metadata = sa.MetaData()

threads_table = sa.Table(
    "lgdist_threads",
    metadata,
    sa.Column("thread_id", sa.String(255), primary_key=True),
    sa.Column("graph", sa.String(255), nullable=False),
    # idle | busy | interrupted | error
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("active_run_id", sa.String(64)),
    sa.Column("updated_at", sa.Float, nullable=False),
)

runs_table = sa.Table(
    "lgdist_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("thread_id", sa.String(255), nullable=False, index=True),
    sa.Column("graph", sa.String(255), nullable=False),
    # pending | running | interrupted | success | error | cancelled
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # start | resume
    sa.Column("input", sa.LargeBinary),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("worker", sa.String(255)),
    sa.Column("start_step", sa.Integer),
    # The step past which the run raises GraphRecursionError (set with start_step).
    sa.Column("stop_step", sa.Integer),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

deliveries_table = sa.Table(
    "lgdist_deliveries",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    # Last counted; rows untouched for DELIVERY_TTL_SECONDS are deleted.
    sa.Column("updated_at", sa.Float, index=True),
)
# A delivery count or step claim matters while its message can still be
# redelivered (Redis: the visibility timeout, an hour) - a week is plenty.
DELIVERY_TTL_SECONDS = 7 * 24 * 3600

events_table = sa.Table(
    "lgdist_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("payload", sa.LargeBinary, nullable=False),
)

@dataclass
class Run:
    run_id: str
    thread_id: str
    graph: str
    status: "RunStatus"
    kind: str
    input: Any
    options: dict
    error: Optional[str]
    worker: Optional[str]
    start_step: Optional[int]
    stop_step: Optional[int]
    created_at: float
    updated_at: float
    # Known when the run began (``lifecycle.begin``): its thread had no
    # checkpoint then, so its start reads none.
    thread_is_new: bool = False

    @property
    def forked_from(self) -> Optional[str]:
        """The checkpoint the run's config names (it goes on from there
        rather than from the thread's latest), if any."""
        return (self.options.get("configurable") or {}).get("checkpoint_id")

    def step_key(self, parent_id: str) -> str:
        """The idempotency key of the checkpoint stored after ``parent_id``:
        one per parent, so a step finished twice is stored once. A run told
        to go on from an older checkpoint (answering its interrupt again)
        adds a branch under it on purpose: its first step's key names the run."""
        if parent_id == self.forked_from:
            return f"step:{parent_id}:{self.run_id}"
        return f"step:{parent_id}"

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "graph": self.graph,
            "status": str(self.status),
            "kind": self.kind,
            "error": self.error,
            "worker": self.worker,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class RunStore:
    """Runs, threads, delivery counters and (for the embedded default) stream
    events, in the same database as the checkpoints."""

    def __init__(self, url_or_engine: Any) -> None:
        self.engine: Engine = (
            url_or_engine if isinstance(url_or_engine, Engine) else create_checkpoint_engine(url_or_engine)
        )
        self._setup_lock = threading.Lock()
        self._ready = False
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        self._insert = insert

    def setup(self) -> None:
        with self._setup_lock:
            if self._ready:
                return
            with self.engine.begin() as conn:
                # Safe when workers start together; adds columns a newer lgdist defines.
                create_tables(conn, metadata.sorted_tables, lock_key=7718001)
            self._ready = True

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        if not self._ready:
            self.setup()
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _one_statement(self) -> Iterator[sa.Connection]:
        """A connection in autocommit, for a change that is one statement
        (atomic on its own): no BEGIN and COMMIT round trips around it."""
        if not self._ready:
            self.setup()
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    # -- runs ---------------------------------------------------------------------
    def get_run(self, run_id: str) -> Optional[Run]:
        with self._tx() as conn:
            row = conn.execute(sa.select(runs_table).where(runs_table.c.run_id == run_id)).mappings().first()
        return run_from_row(row) if row else None

    def list_runs(self, thread_id: Optional[str] = None, limit: int = 100) -> list[Run]:
        query = sa.select(runs_table).order_by(runs_table.c.created_at.desc()).limit(limit)
        if thread_id is not None:
            query = query.where(runs_table.c.thread_id == thread_id)
        with self._tx() as conn:
            return [run_from_row(r) for r in conn.execute(query).mappings()]

    def pending_runs(self, thread_id: str) -> list[Run]:
        """The thread's runs that have not started, oldest first."""
        query = (
            sa.select(runs_table)
            .where(runs_table.c.thread_id == thread_id, runs_table.c.status == "pending")
            .order_by(runs_table.c.created_at)
        )
        with self._tx() as conn:
            return [run_from_row(r) for r in conn.execute(query).mappings()]

    # -- threads ------------------------------------------------------------------
    def get_thread(self, thread_id: str) -> Optional[dict]:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(threads_table).where(threads_table.c.thread_id == thread_id)
            ).mappings().first()
        return dict(row) if row else None

    def touch_thread(self, thread_id: str) -> None:
        """Move the thread's lease forward (progress; a node's heartbeat)."""
        with self._tx() as conn:
            conn.execute(
                sa.update(threads_table)
                .where(threads_table.c.thread_id == thread_id)
                .values(updated_at=time.time())
            )

    def stalled_threads(self, older_than: float) -> list[dict]:
        cutoff = time.time() - older_than
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(threads_table).where(
                    threads_table.c.status == "busy", threads_table.c.updated_at < cutoff
                )
            ).mappings()
            return [dict(r) for r in rows]

    # -- deliveries -----------------------------------------------------------------
    def count_delivery(self, key: str) -> int:
        """Count one more delivery of a task message; returns the new count
        (one upsert statement: this runs on every node task)."""
        now = time.time()
        stmt = self._insert(deliveries_table).values(key=key, count=1, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[deliveries_table.c.key],
            set_={"count": deliveries_table.c.count + 1, "updated_at": now},
        ).returning(deliveries_table.c.count)
        with self._tx() as conn:
            return conn.execute(stmt).scalar_one()

    def expire_deliveries(self, older_than: float = DELIVERY_TTL_SECONDS) -> int:
        """Delete counters and claims untouched for ``older_than`` seconds
        (kept: ``metrics:`` counters). Returns how many went."""
        with self._tx() as conn:
            return conn.execute(
                sa.delete(deliveries_table).where(
                    deliveries_table.c.updated_at < time.time() - older_than,
                    ~deliveries_table.c.key.startswith("metrics:"),
                )
            ).rowcount

    # -- events (embedded stream bus) -------------------------------------------------
    def append_events(self, run_id: str, payloads: list[bytes]) -> None:
        if not payloads:
            return
        with self._tx() as conn:
            conn.execute(events_table.insert(), [{"run_id": run_id, "payload": p} for p in payloads])

    def read_events(self, run_id: str, after: int) -> list[tuple[int, bytes]]:
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(events_table.c.seq, events_table.c.payload)
                .where(events_table.c.run_id == run_id, events_table.c.seq > after)
                .order_by(events_table.c.seq)
            )
            return [(r.seq, r.payload) for r in rows]


def run_from_row(row: Any) -> Run:
    """A ``Run`` from a row of the runs table (as a mapping)."""
    from lgdist.distributed.lifecycle import RunStatus

    return Run(
        run_id=row["run_id"],
        thread_id=row["thread_id"],
        graph=row["graph"],
        status=RunStatus(row["status"]),
        kind=row["kind"],
        input=serde.loads(row["input"]) if row["input"] is not None else None,
        options=serde.loads(row["options"]),
        error=row["error"],
        worker=row["worker"],
        start_step=row["start_step"],
        stop_step=row["stop_step"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
