"""Runs and threads as one state machine: every status change in one place.

::

    run:     pending ──► running ──► interrupted | success | error | cancelled
                │                        ▲
                └── error | cancelled ───┘   (never started)

    thread:  idle | interrupted | error ──claim──► busy ──release──► idle | interrupted | error

A thread is ``busy`` exactly while a pending or running run holds it
(``active_run_id``). Each function below is one atomic statement or one
transaction that states what it expects (the run's current status, the
thread's holder), so a run that ends releases its thread in the same
transaction and no caller has to wait out a gap between the two. Every
transition is idempotent per run id: a second call with the same run id
finds the state it expects already left and changes nothing (a claim by the
run that already holds the thread succeeds again).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Optional

import sqlalchemy as sa

from lgdist import serde
from lgdist.checkpoint.sql import blobs_table, checkpoints_table, writes_table
from lgdist.distributed.runs import Run, RunStore, run_from_row, runs_table, threads_table


class RunStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    INTERRUPTED = "interrupted"
    SUCCESS = "success"
    ERROR = "error"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


class ThreadStatus(str, Enum):
    IDLE = "idle"
    BUSY = "busy"
    INTERRUPTED = "interrupted"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


ACTIVE = (RunStatus.PENDING, RunStatus.RUNNING)
FINAL = (RunStatus.INTERRUPTED, RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.CANCELLED)
# Thread statuses a new run (or an enqueued one) may claim, and a resume.
CLAIMABLE = (ThreadStatus.IDLE, ThreadStatus.INTERRUPTED, ThreadStatus.ERROR)
RESUMABLE = (ThreadStatus.INTERRUPTED, ThreadStatus.ERROR)
# The thread status a run leaves behind. A cancelled run's thread rests as
# its checkpoint says (see ``run_end.resting_status``).
THREAD_AFTER = {
    RunStatus.SUCCESS: ThreadStatus.IDLE,
    RunStatus.INTERRUPTED: ThreadStatus.INTERRUPTED,
    RunStatus.ERROR: ThreadStatus.ERROR,
    RunStatus.CANCELLED: ThreadStatus.IDLE,
}


def _values(statuses: Iterable[Any]) -> list[str]:
    return [str(s) for s in statuses]


def _claim(conn: sa.Connection, thread_id: str, graph: str, run_id: str, allowed: Iterable[Any], now: float) -> bool:
    """Make ``run_id`` the thread's holder if the thread's status is in
    ``allowed``, or if the run holds it already (a repeated claim)."""
    return (
        conn.execute(
            sa.update(threads_table)
            .where(
                threads_table.c.thread_id == thread_id,
                sa.or_(threads_table.c.status.in_(_values(allowed)), threads_table.c.active_run_id == run_id),
            )
            .values(status=str(ThreadStatus.BUSY), active_run_id=run_id, graph=graph, updated_at=now)
        ).rowcount
        == 1
    )


def _ensure_thread(store: RunStore, conn: sa.Connection, thread_id: str, graph: str, now: float) -> None:
    conn.execute(
        store._insert(threads_table)
        .values(thread_id=thread_id, graph=graph, status=str(ThreadStatus.IDLE), active_run_id=None, updated_at=now)
        .on_conflict_do_nothing()
    )


def _run_row(**fields: Any) -> dict:
    now = time.time()
    return {
        "run_id": fields.get("run_id") or uuid.uuid4().hex,
        "thread_id": fields["thread_id"],
        "graph": fields["graph"],
        "status": str(fields.get("status", RunStatus.PENDING)),
        "kind": fields["kind"],
        "input": serde.dumps(fields.get("input")),
        "options": serde.dumps(fields.get("options") or {}).decode(),
        "error": fields.get("error"),
        "worker": None,
        "start_step": None,
        "stop_step": None,
        "created_at": now,
        "updated_at": now,
    }


# -- creating runs -----------------------------------------------------------------------


def submit(
    store: RunStore,
    *,
    thread_id: str,
    graph: str,
    kind: str,
    input: Any,
    options: dict,
    run_id: Optional[str] = None,
    claim_from: Iterable[Any] = CLAIMABLE,
    busy_error: Optional[str] = None,
    new_thread: bool = False,
    thread_known: bool = False,
) -> tuple[Run, bool]:
    """Create a pending run and claim its thread, in one transaction.
    Returns the run and whether it holds the thread. When the thread cannot
    be claimed and ``busy_error`` is given, the run is created as an error
    with that text and the holder's run id (the thread is untouched); otherwise it stays pending,
    queued for the thread. Repeating it with the same ``run_id`` changes
    nothing and answers the same. ``new_thread``: the caller made the
    thread id up for this run (a stateless run).

    A thread that does not exist yet is created busy with the run, the
    usual case for a new conversation: on Postgres one statement (in
    autocommit), elsewhere two. ``thread_known``: the caller has seen the
    thread's row, so that statement is not tried first."""
    now = time.time()
    row = _run_row(thread_id=thread_id, graph=graph, kind=kind, input=input, options=options, run_id=run_id)
    create = new_thread or ThreadStatus.IDLE in claim_from
    exists = False
    if create and not thread_known and store.engine.dialect.name == "postgresql":
        if _create_with_thread(store, row, graph, now):
            return Run(**{**row, "status": RunStatus.PENDING, "input": input, "options": options or {}}), True
        exists = True  # a thread's next run, or a repeated submit
    with store._tx() as conn:
        if create and not exists:
            created = conn.execute(_thread_insert(store, row, graph, now).returning(threads_table.c.thread_id)).first()
            if created is not None:
                # A repeated submit finds the thread, so it takes the path below.
                conn.execute(store._insert(runs_table).values(**row))
                return Run(**{**row, "status": RunStatus.PENDING, "input": input, "options": options or {}}), True
        elif not exists:
            _ensure_thread(store, conn, thread_id, graph, now)
        conn.execute(store._insert(runs_table).values(**row).on_conflict_do_nothing())
        # The run as stored (a repeated submit finds the first one's row):
        # read in this transaction, so the caller needs no second one.
        current = conn.execute(sa.select(runs_table).where(runs_table.c.run_id == row["run_id"])).mappings().one()
        claimed = False
        if current["status"] == RunStatus.PENDING and current["thread_id"] == thread_id:
            claimed = _claim(conn, thread_id, graph, row["run_id"], claim_from, now)
            if not claimed and busy_error is not None:
                active = conn.execute(
                    sa.select(threads_table.c.active_run_id).where(threads_table.c.thread_id == thread_id)
                ).scalar()
                refused = conn.execute(
                    sa.update(runs_table)
                    .where(runs_table.c.run_id == row["run_id"], runs_table.c.status == str(RunStatus.PENDING))
                    .values(status=str(RunStatus.ERROR), error=f"{busy_error} ({active})", updated_at=now)
                    .returning(*runs_table.c)
                ).mappings().first()
                current = refused or current
    return run_from_row(current), claimed


def _thread_insert(store: RunStore, row: dict, graph: str, now: float) -> Any:
    """The thread of ``row``'s run, created busy with it (unless it exists)."""
    return (
        store._insert(threads_table)
        .values(thread_id=row["thread_id"], graph=graph, status=str(ThreadStatus.BUSY), active_run_id=row["run_id"], updated_at=now)
        .on_conflict_do_nothing()
    )


def _create_with_thread(store: RunStore, row: dict, graph: str, now: float) -> bool:
    """Postgres: create the run and its thread, busy with it, in one
    statement (the run is inserted only if the thread was). Whether they
    were: False if the thread exists."""
    thread = _thread_insert(store, row, graph, now).returning(threads_table.c.thread_id).cte("created_thread")
    names = [c.name for c in runs_table.c]
    run = sa.select(*[sa.literal(row[c.name], type_=c.type) for c in runs_table.c]).where(
        sa.exists(sa.select(thread.c.thread_id))
    )
    statement = sa.insert(runs_table).from_select(names, run).returning(runs_table.c.run_id).add_cte(thread)
    with store._one_statement() as conn:
        return conn.execute(statement).first() is not None


def record_refusal(store: RunStore, *, thread_id: str, graph: str, kind: str, error: str) -> Run:
    """A run that was refused before it could start (a malformed resume): an
    error run on the thread's list that says why, without touching the thread."""
    row = _run_row(thread_id=thread_id, graph=graph, kind=kind, input=None, options={}, status=RunStatus.ERROR, error=error)
    with store._tx() as conn:
        conn.execute(store._insert(runs_table).values(**row).on_conflict_do_nothing())
    return store.get_run(row["run_id"])  # type: ignore[return-value]


def claim(store: RunStore, thread_id: str, graph: str, run_id: str, allowed: Iterable[Any] = CLAIMABLE) -> bool:
    """A queued (pending) run takes its free thread. One statement."""
    now = time.time()
    with store._tx() as conn:
        _ensure_thread(store, conn, thread_id, graph, now)
        return _claim(conn, thread_id, graph, run_id, allowed, now)


# -- running -------------------------------------------------------------------------------


def begin(store: RunStore, run_id: str, worker: Optional[str]) -> Optional[Run]:
    """pending → running, only while the run holds its thread. One
    statement, which returns the run as it now is (None: no change) and
    whether its thread has a checkpoint (``Run.thread_is_new``: none, so
    the start reads none; no one else writes to a thread its run holds)."""
    holds = (
        sa.select(threads_table.c.thread_id)
        .where(threads_table.c.thread_id == runs_table.c.thread_id, threads_table.c.active_run_id == run_id)
        .exists()
    )
    history = (
        sa.select(checkpoints_table.c.checkpoint_id)
        .where(checkpoints_table.c.thread_id == runs_table.c.thread_id)
        .exists()
    )
    with store._one_statement() as conn:
        row = conn.execute(
            sa.update(runs_table)
            .where(runs_table.c.run_id == run_id, runs_table.c.status == str(RunStatus.PENDING), holds)
            .values(status=str(RunStatus.RUNNING), worker=worker, updated_at=time.time())
            .returning(*runs_table.c, history.label("has_history"))
        ).mappings().first()
    if row is None:
        return None
    run = run_from_row(row)
    run.thread_is_new = not row["has_history"]
    return run


@dataclass
class Ended:
    """What :func:`finish` did: the run's error text as stored, the runs
    queued on its thread (oldest first), and whether the thread is gone."""

    error: Optional[str]
    queued: list[Run] = field(default_factory=list)
    thread_deleted: bool = False


def finish(
    store: RunStore,
    run_id: str,
    status: RunStatus,
    *,
    error: Optional[str] = None,
    expect: Iterable[Any] = (RunStatus.RUNNING,),
    thread_status: Optional[ThreadStatus] = None,
    delete_thread: bool = False,
) -> Optional[Ended]:
    """The run leaves ``expect`` for ``status`` and releases its thread (to
    ``thread_status``, by default what ``status`` leaves behind), in one
    transaction that also reads the runs queued on the thread. With
    ``delete_thread`` (a run submitted with ``on_completion="delete"``) the
    thread goes instead — its record, its runs and its checkpoints — as
    LangGraph's server deletes a stateless run's thread. None: the run had
    left ``expect`` already (nothing changed)."""
    with store._tx() as conn:
        return finish_in(
            conn, run_id, status, error=error, expect=expect, thread_status=thread_status, delete_thread=delete_thread
        )


def finish_in(
    conn: sa.Connection,
    run_id: str,
    status: RunStatus,
    *,
    error: Optional[str] = None,
    expect: Iterable[Any] = (RunStatus.RUNNING,),
    thread_status: Optional[ThreadStatus] = None,
    delete_thread: bool = False,
) -> Optional[Ended]:
    """:func:`finish` in the caller's transaction (a slice's last store)."""
    values: dict = {"status": str(status), "updated_at": time.time()}
    if error is not None:
        values["error"] = error
    rest = thread_status or THREAD_AFTER[status]
    row = conn.execute(
        sa.update(runs_table)
        .where(runs_table.c.run_id == run_id, runs_table.c.status.in_(_values(expect)))
        .values(**values)
        .returning(runs_table.c.thread_id, runs_table.c.error)
    ).first()
    if row is None:
        return None
    if delete_thread:
        for table in (runs_table, threads_table, writes_table, checkpoints_table, blobs_table):
            conn.execute(sa.delete(table).where(table.c.thread_id == row.thread_id))
        return Ended(row.error, thread_deleted=True)
    _release(conn, row.thread_id, run_id, rest)
    queued = conn.execute(
        sa.select(runs_table)
        .where(runs_table.c.thread_id == row.thread_id, runs_table.c.status == str(RunStatus.PENDING))
        .order_by(runs_table.c.created_at)
    ).mappings()
    return Ended(row.error, [run_from_row(r) for r in queued])


def end(
    store: RunStore,
    run_id: str,
    status: RunStatus,
    *,
    error: Optional[str] = None,
    expect: Iterable[Any] = (RunStatus.RUNNING,),
    thread_status: Optional[ThreadStatus] = None,
) -> bool:
    """:func:`finish`, answering whether this call made the change."""
    return finish(store, run_id, status, error=error, expect=expect, thread_status=thread_status) is not None


def _release(conn: sa.Connection, thread_id: str, run_id: str, status: ThreadStatus) -> bool:
    return (
        conn.execute(
            sa.update(threads_table)
            .where(threads_table.c.thread_id == thread_id, threads_table.c.active_run_id == run_id)
            .values(status=str(status), active_run_id=None, updated_at=time.time())
        ).rowcount
        == 1
    )


def release_ended(
    store: RunStore, thread_id: str, run_id: str, status: ThreadStatus, roll_back: Optional[dict] = None
) -> bool:
    """Free a thread still held by ``run_id`` once that run has ended (a
    cancelled run whose step stopped; the sweeper's repair). One statement:
    it changes nothing if the run is still active or holds nothing.

    ``roll_back`` (a run cancelled with :func:`cancel`'s ``roll_back``):
    the same transaction drops the thread's checkpoints stored after
    ``roll_back["after"]`` (all of them when it is None), so the run's
    progress is gone before the next run can claim the thread, and only
    the call that frees the thread drops anything."""
    ended = (
        sa.select(runs_table.c.run_id)
        .where(runs_table.c.run_id == run_id, runs_table.c.status.in_(_values(FINAL)))
        .exists()
    )
    missing = ~sa.select(runs_table.c.run_id).where(runs_table.c.run_id == run_id).exists()
    with store._tx() as conn:
        freed = (
            conn.execute(
                sa.update(threads_table)
                .where(
                    threads_table.c.thread_id == thread_id,
                    threads_table.c.active_run_id == run_id,
                    sa.or_(ended, missing),
                )
                .values(status=str(status), active_run_id=None, updated_at=time.time())
            ).rowcount
            == 1
        )
        if freed and roll_back is not None:
            _drop_checkpoints_after(conn, thread_id, roll_back.get("after"))
        return freed


def _drop_checkpoints_after(conn: Any, thread_id: str, after: Optional[str]) -> None:
    """A rolled-back run's checkpoints (every namespace) and their pending
    writes; with no ``after``, the thread's whole history and its values.
    Checkpoint ids sort by creation time. Values a dropped checkpoint
    stored stay behind unreferenced (as a fork's do), under versions no
    later step reuses."""
    tables = [writes_table, checkpoints_table] + ([blobs_table] if after is None else [])
    for table in tables:
        where = table.c.thread_id == thread_id
        if after is not None:
            where = sa.and_(where, table.c.checkpoint_id > after)
        conn.execute(sa.delete(table).where(where))


def rest(store: RunStore, thread_id: str, status: ThreadStatus) -> bool:
    """Restate a free thread's resting status after its checkpoints changed
    under it (a rolled-back run's dropped). One statement: nothing changes
    while a run holds the thread."""
    with store._tx() as conn:
        return (
            conn.execute(
                sa.update(threads_table)
                .where(
                    threads_table.c.thread_id == thread_id,
                    threads_table.c.active_run_id.is_(None),
                    threads_table.c.status.in_(_values(CLAIMABLE)),
                )
                .values(status=str(status), updated_at=time.time())
            ).rowcount
            == 1
        )


def cancel(
    store: RunStore, run_id: str, thread_status: ThreadStatus, roll_back: Optional[dict] = None
) -> Optional[RunStatus]:
    """Cancel a run. A pending run ends at once and releases its thread to
    ``thread_status`` (same transaction); a running one is marked cancelled
    and its thread is released when its current step stops. Returns the
    status the run was cancelled from, or None if it had ended already.

    ``roll_back`` (``{"after": checkpoint_id or None}``) is kept with a
    running run, for :func:`release_ended` to drop what the run stored when
    its step stops (a pending run stored nothing)."""
    if end(store, run_id, RunStatus.CANCELLED, expect=(RunStatus.PENDING,), thread_status=thread_status):
        return RunStatus.PENDING
    with store._tx() as conn:
        values: dict[str, Any] = {"status": str(RunStatus.CANCELLED), "updated_at": time.time()}
        if roll_back is not None:
            row = conn.execute(sa.select(runs_table.c.options).where(runs_table.c.run_id == run_id)).first()
            if row is not None:
                options = {**serde.loads(row.options), "roll_back": roll_back}
                values["options"] = serde.dumps(options).decode()
        changed = conn.execute(
            sa.update(runs_table)
            .where(runs_table.c.run_id == run_id, runs_table.c.status == str(RunStatus.RUNNING))
            .values(**values)
        ).rowcount
    return RunStatus.RUNNING if changed == 1 else None


def note(store: RunStore, run_id: str, *, expect: Iterable[Any] = ACTIVE, **values: Any) -> bool:
    """Record facts about an active run that are not a status change (its
    first step, the last error text a node saved)."""
    with store._tx() as conn:
        return note_in(conn, run_id, expect=expect, **values)


def note_in(conn: sa.Connection, run_id: str, *, expect: Iterable[Any] = ACTIVE, **values: Any) -> bool:
    """:func:`note` in the caller's transaction."""
    if "status" in values:
        raise ValueError("a run's status changes only through lifecycle transitions")
    values["updated_at"] = time.time()
    return (
        conn.execute(
            sa.update(runs_table)
            .where(runs_table.c.run_id == run_id, runs_table.c.status.in_(_values(expect)))
            .values(**values)
        ).rowcount
        == 1
    )


# -- leases and the sweeper ------------------------------------------------------------------


def claim_stall(store: RunStore, thread_id: str, run_id: str, older_than: float) -> bool:
    """Whether this sweeper may repair the thread's stalled run: true for one
    caller per stall period (the lease moves forward in the same statement),
    so concurrent sweeps never repair one step twice."""
    now = time.time()
    with store._tx() as conn:
        return (
            conn.execute(
                sa.update(threads_table)
                .where(
                    threads_table.c.thread_id == thread_id,
                    threads_table.c.active_run_id == run_id,
                    threads_table.c.status == str(ThreadStatus.BUSY),
                    threads_table.c.updated_at < now - older_than,
                )
                .values(updated_at=now)
            ).rowcount
            == 1
        )
