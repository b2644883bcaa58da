"""What a step task reads before it runs its node: one statement.

The run's fields (never its input blob, which only ``lgdist.start`` needs)
and the step's checkpoint row come back from one ``SELECT`` (the run row
outer-joined with the checkpoint row); the checkpoint's values then cost at
most one more statement, for the channels this process has not decoded yet
(:mod:`lgdist.checkpoint.blob_cache`), and its pending writes one more only
when the step may have some (see :func:`read_step`). All on one pooled
connection, without a pre-ping, in one transaction that also touches the
thread's lease (on Postgres the first statement does, as a CTE), so a
redelivered or long-queued step shows the sweeper it is alive before its
node starts.

The touch writes only a lease older than :data:`LEASE_SLACK_SECONDS`. A
step read right after its step was sent (the usual case: the store that
sent it touched the lease) then writes nothing, and its transaction
commits without waiting for a WAL flush: a read stays a read. A lease at
most a second old is as good as a fresh one to the sweeper, which takes
only threads untouched for ``stall_seconds`` (at least one second).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from typing import Any, NamedTuple, Optional

import sqlalchemy as sa

from lgdist import serde
from lgdist.checkpoint.base import CheckpointTuple
from lgdist.checkpoint.sql import checkpoints_table
from lgdist.distributed.runs import Run, runs_table, threads_table

# A lease touched this recently is not touched again by a step's read.
LEASE_SLACK_SECONDS = 1.0

_RUN_FIELDS = [f.name for f in dataclasses.fields(Run)]
_RUN_COLUMNS = [c for c in runs_table.c if c.name != "input" and c.name in _RUN_FIELDS]


class StepRead(NamedTuple):
    run: Optional[Run]
    saved: Optional[CheckpointTuple]
    # The checkpoint stored for this step already (under ``step:<id>``), if any.
    stored_child: Optional[str] = None


def _statement(saver: Any) -> Any:
    cached = getattr(saver, "_lgdist_step_read", None)
    if cached is not None:
        return cached
    cp = checkpoints_table
    child = checkpoints_table.alias("child")
    joined = runs_table.outerjoin(
        cp,
        sa.and_(
            cp.c.thread_id == runs_table.c.thread_id,
            cp.c.checkpoint_ns == "",
            cp.c.checkpoint_id == sa.bindparam("checkpoint_id"),
        ),
    ).outerjoin(
        child,
        sa.and_(
            child.c.thread_id == runs_table.c.thread_id,
            child.c.checkpoint_ns == "",
            child.c.idempotency_key == sa.bindparam("step_key"),
        ),
    )
    statement = (
        sa.select(
            *[c.label(f"run_{c.name}") for c in _RUN_COLUMNS],
            *saver.checkpoint_columns,
            child.c.checkpoint_id.label("stored_child"),
        )
        .select_from(joined)
        .where(runs_table.c.run_id == sa.bindparam("run_id"))
    )
    if saver.engine.dialect.name == "postgresql":
        # The same statement touches the thread's lease (a data-modifying
        # CTE): a redelivered or long-queued step shows it is alive to the
        # sweeper before its node starts, at no extra round trip. A fresh
        # lease is left as it is: the statement then writes no row.
        run_thread = sa.select(runs_table.c.thread_id).where(runs_table.c.run_id == sa.bindparam("run_id"))
        lease = (
            sa.update(threads_table)
            .where(
                threads_table.c.thread_id == run_thread.scalar_subquery(),
                threads_table.c.updated_at < sa.bindparam("stale_before"),
            )
            .values(updated_at=sa.bindparam("now"))
            .returning(threads_table.c.thread_id)
            .cte("lease")
        )
        statement = statement.add_cte(lease)
    saver._lgdist_step_read = statement
    return statement


def read_step(backend: Any, run_id: str, checkpoint_id: str, *, with_writes: bool = True) -> StepRead:
    """The run (its ``input`` left unread: ``None``), the checkpoint
    ``checkpoint_id`` of its thread and the id of the checkpoint stored
    for that step already (if any), on one connection. ``with_writes=False``
    skips the pending writes: a one-task step that is not a resumed run's
    first step and not a redelivery has none (its task saves no writes; it
    stores the next checkpoint)."""
    saver = backend.saver
    postgres = saver.engine.dialect.name == "postgresql"
    with saver.reading() as conn:
        now = time.time()
        params = {
            "run_id": run_id, "checkpoint_id": checkpoint_id, "step_key": f"step:{checkpoint_id}",
            "now": now, "stale_before": now - LEASE_SLACK_SECONDS,
        }  # fmt: skip
        row = conn.execute(_statement(saver), params).first()
        read = _read_row(saver, conn, row, with_writes, checkpoint_id, params["step_key"])
        if postgres:
            conn.commit()  # the lease touch: one transaction for every read
    if not postgres and read.run is not None and read.run.status == "running":
        backend.runs.touch_thread(read.run.thread_id)  # the embedded default (SQLite)
    return read


def _read_row(saver: Any, conn: Any, row: Any, with_writes: bool, checkpoint_id: str, step_key: str) -> StepRead:
    if row is None:
        return StepRead(None, None)
    fields = {c.name: getattr(row, f"run_{c.name}") for c in _RUN_COLUMNS}
    fields["options"] = serde.loads(fields["options"]) if fields.get("options") else {}
    run = Run(**{"input": None, **fields})
    if row.checkpoint_id is None:
        return StepRead(run, None)
    stored_child = row.stored_child
    key = run.step_key(checkpoint_id)
    if key != step_key:
        # A fork's first step: the branch already there does not count.
        stored_child = conn.execute(
            sa.select(checkpoints_table.c.checkpoint_id).where(
                checkpoints_table.c.thread_id == run.thread_id,
                checkpoints_table.c.checkpoint_ns == "",
                checkpoints_table.c.idempotency_key == key,
            )
        ).scalar()
    return StepRead(run, saver.tuple_from_row(conn, row, with_writes=with_writes), stored_child)


# -- the tasks of one wide step in one process ---------------------------------------

_RECENT: "OrderedDict[tuple[str, str], tuple[StepRead, bool]]" = OrderedDict()
# The step restored and planned (no input read) by its first task here.
_LOOPS: dict[tuple[str, str], Any] = {}
_RECENT_LOCK = threading.Lock()
_RECENT_SIZE = 32


def recent_step(run_id: str, checkpoint_id: str, *, with_writes: bool) -> Optional[StepRead]:
    """What a task of this process read (or the process stored and sent,
    see :func:`remember_sent_step`) for the step at ``checkpoint_id`` of
    ``run_id``, if it has it: the other tasks
    of a wide step need no read of their own. A checkpoint never changes;
    the run's fields are those of the step's start (a run cancelled since
    runs this step's remaining nodes, as with any step already sent: its
    callback settles the cancel). Pending writes are those of the step's
    start, all a first delivery needs: a resume's answers and ``Command``
    writes are stored before the step is sent; a task's own earlier
    outcome only exists for a redelivery, which reads the store."""
    with _RECENT_LOCK:
        found = _RECENT.get((run_id, checkpoint_id))
        if found is None or (with_writes and not found[1]):
            return None
        _RECENT.move_to_end((run_id, checkpoint_id))
    read = found[0]
    return StepRead(dataclasses.replace(read.run), read.saved, None)  # type: ignore[arg-type]


def remember_step(run_id: str, checkpoint_id: str, read: StepRead, *, with_writes: bool) -> None:
    """Keep a wide step's read for its other tasks in this process."""
    if read.run is None or read.saved is None or read.stored_child is not None:
        return
    with _RECENT_LOCK:
        _RECENT[(run_id, checkpoint_id)] = (read, with_writes)
        _RECENT.move_to_end((run_id, checkpoint_id))
        _LOOPS.pop((run_id, checkpoint_id), None)
        while len(_RECENT) > _RECENT_SIZE:
            _LOOPS.pop(_RECENT.popitem(last=False)[0], None)


def recent_loop(run_id: str, checkpoint_id: str) -> Optional[Any]:
    """The step this process read, restored and planned by its first task
    here (see :func:`remember_loop`); None if not planned yet. Not to run
    a task on: take a :meth:`~lgdist.loop.ThreadLoop.sibling` of it."""
    with _RECENT_LOCK:
        return _LOOPS.get((run_id, checkpoint_id))


def remember_loop(run_id: str, checkpoint_id: str, loop: Any) -> None:
    """Keep a step's restored loop and plan for its other tasks in this
    process: both follow from the checkpoint and its pending writes, which
    the step's read (:func:`remember_step`) keeps. Keeps a sibling with
    copies of the tasks, so that running a task changes nothing kept."""
    kept = loop.sibling()
    kept.tasks = {task_id: dataclasses.replace(task, writes=[]) for task_id, task in loop.tasks.items()}
    with _RECENT_LOCK:
        if (run_id, checkpoint_id) in _RECENT:
            _LOOPS[(run_id, checkpoint_id)] = kept


def remember_sent_step(run: Run, loop: Any, *, has_writes: bool, saver: Any) -> None:
    """Keep a wide step this process stored and is sending, for the tasks
    of it this process runs: they need no read, no restore and no plan.
    ``loop`` is at the step's stored checkpoint, planned. What is kept is
    a sibling with its own copies of the checkpoint, the channels and the
    tasks (the sending process may go on with ``loop``), and the run as
    running (a step is sent only for a running run; one cancelled since
    runs its remaining nodes, as for a read kept by :func:`remember_step`).
    A step whose checkpoint has saved writes (``has_writes``: a resume's
    answers, earlier outcomes) is not kept: its tasks read them. ``saver``
    is the worker's store: the sender's loop may be storing through its
    slice (``slice_store``), which keeps what it is given for a store the
    tasks' process never makes (a failed task's error would be lost)."""
    if has_writes:
        return
    from lgdist.checkpoint.sql_reads import checkpoint_config
    from lgdist.distributed.lifecycle import RunStatus
    from lgdist.engine.checkpoint import copy_checkpoint

    checkpoint_id = loop.checkpoint["id"]
    kept = loop.sibling()
    kept.saver = saver
    kept.checkpoint = copy_checkpoint(loop.checkpoint)
    kept.channels = {name: channel.copy() for name, channel in loop.channels.items()}
    # As a read of the stored row names it (the loop's own may still name
    # the checkpoint before, where the store is behind).
    kept.checkpoint_config = checkpoint_config(run.thread_id, loop.checkpoint_ns, checkpoint_id)
    kept.pending_writes = []
    kept.tasks = {task_id: dataclasses.replace(task, writes=[]) for task_id, task in loop.tasks.items()}
    read = StepRead(dataclasses.replace(run, status=RunStatus.RUNNING), None)
    with _RECENT_LOCK:
        _RECENT[(run.run_id, checkpoint_id)] = (read, True)
        _RECENT.move_to_end((run.run_id, checkpoint_id))
        _LOOPS[(run.run_id, checkpoint_id)] = kept
        while len(_RECENT) > _RECENT_SIZE:
            _LOOPS.pop(_RECENT.popitem(last=False)[0], None)


def forget_recent_steps() -> None:
    """Forget every step read (a process new to every step: tests, benchmarks)."""
    with _RECENT_LOCK:
        _RECENT.clear()
        _LOOPS.clear()
