"""``lgdist.finish_step``, a wide step's chord callback, and what happens
when a node task fails for good.

The callback reads every task's outcome (kept in Redis, or stored), stores
the next checkpoint with the step's writes under the key ``step:<parent>``
(a second delivery stores nothing), and sends the next step; a next step of
one task runs right here. A redelivered callback goes on from the thread's
latest checkpoint under the same claim as any sent step.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

from lgdist.checkpoint.base import PreconditionFailed
from lgdist.constants import ERROR
from lgdist.distributed.backend import Backend
from lgdist.distributed.coordinator import (
    apply_stop,
    end_run_for_status,
    is_current_step,
    latest_loop,
    make_loop,
    rejected,
    schedule_step,
    step_key,
)
from lgdist.distributed.crashpoints import crash_point
from lgdist.distributed.lifecycle import RunStatus
from lgdist.distributed.messages import FinishStepMessage
from lgdist.distributed.run_end import (
    end_run,
    fail_pending_run,
    publish,
    settle_cancelled,
)
from lgdist.distributed.runs import Run
from lgdist.distributed.step_writes import store_kept_writes, take_kept_writes
from lgdist.distributed.transient import TRANSIENT_ERRORS
from lgdist.engine import mark_resumed, should_interrupt
from lgdist.errors import NodeFailedError
from lgdist.loop import StepAlreadyFinished, ThreadLoop

log = logging.getLogger("lgdist.coordinator")


def finish_step(backend: Backend, msg: FinishStepMessage, *, worker: Optional[str] = None, again: bool = False) -> dict:
    """``lgdist.finish_step``: apply the step's writes (kept in Redis by its
    tasks, or saved), store the next checkpoint (once) with those writes,
    stream the step's events, schedule the next step. A next step with one
    task on the callback's queue runs right here (see :func:`_go_on`).

    ``again``: an earlier delivery of this message is over (the broker
    redelivered it after its worker died, or Celery retried it after an
    outage); it may have stored this step and more, run inline, without
    sending the step after them. ``worker`` names the worker in the node
    events of a step run here.

    Round trips: one statement reads the run's fields and the checkpoint
    row (touching the lease), one more its pending writes, at most one
    more the channel values this process has not decoded; one Redis call
    reads the kept writes; one transaction touches the lease, checks the
    run still runs, stores the checkpoint, its changed blobs and the
    step's writes."""
    from lgdist.distributed.leases import lease_precondition
    from lgdist.distributed.step_reads import read_step

    run, saved, stored_child = read_step(backend, msg.run_id, msg.checkpoint_id, with_writes=True)
    if run is None:
        return rejected(f"lgdist.finish_step: there is no run {msg.run_id!r}")
    if run.thread_id != msg.thread_id:
        return rejected(f"lgdist.finish_step: run {run.run_id} belongs to thread {run.thread_id!r}, not {msg.thread_id!r}")
    if run.status == RunStatus.CANCELLED:
        # The step stops here: its tasks' writes outlive it (a continue
        # does not run those tasks again).
        store_kept_writes(backend, run, msg.checkpoint_id)
        settle_cancelled(backend, run)
        return {"status": "ok", "outcome": "cancelled"}
    if run.status != RunStatus.RUNNING:
        if again:
            # The earlier delivery may have ended the run with the slice it
            # stored (durability "async") and died before streaming them.
            from lgdist.distributed.restream import restream

            restream(backend, run, msg.checkpoint_id)
        return {"status": "ok", "outcome": f"ignored: run is {run.status}"}
    loop = make_loop(backend, run, checkpoint_id=msg.checkpoint_id)
    if saved is None or loop.restore(saved) is None:
        # Nothing sends this for a checkpoint that is not stored: a forged or
        # garbled message. It must not end a healthy run.
        return rejected(f"lgdist.finish_step: thread {run.thread_id!r} has no checkpoint {msg.checkpoint_id!r}")
    apply_stop(run, loop)
    if msg.resumed:
        mark_resumed(loop.checkpoint)
    kept = take_kept_writes(backend, run, loop)
    missing, failed = loop.collect()
    if kept and (failed or missing):
        # The step does not complete as it is: keep its tasks' writes.
        store_kept_writes(backend, run, msg.checkpoint_id)
    if failed:
        if not is_current_step(backend, run, msg.checkpoint_id):
            return {"status": "ok", "outcome": f"ignored: {msg.checkpoint_id} is not the current step"}
        run = backend.runs.get_run(run.run_id) or run
        task, text = failed[0]
        error = run.error or f"node {task.name!r} failed: {text}"
        end_run(backend, run, RunStatus.ERROR, error)
        return {"status": "ok", "outcome": "run failed"}
    if missing:
        latest = latest_loop(backend, run)
        if latest is None or latest.checkpoint["id"] != msg.checkpoint_id:
            return {"status": "ok", "outcome": f"ignored: {msg.checkpoint_id} is not the current step"}
        # A node task vanished (should not happen with acks_late): run the
        # step again; tasks with saved writes are not re-run.
        log.warning("finish_step: %d task(s) of %s without writes; rescheduling", len(missing), msg.checkpoint_id)
        if msg.resumed:
            mark_resumed(latest.checkpoint)
        schedule_step(backend, run, latest, resumed=msg.resumed, generation=1, force=True)
        return {"status": "ok", "outcome": "rescheduled"}
    key = step_key(run, msg.checkpoint_id)
    # Writes the tasks kept in Redis are stored with the checkpoint, in its
    # transaction, as the pending writes of its parent.
    loop.unsaved = [loop.tasks[t] for t in kept if t in loop.tasks]
    # Under durability "async" a first delivery keeps this step with the
    # slice of one-task steps it runs next (see ``single_step``): one
    # transaction for all of them (and the run's end). A redelivery stores
    # it at once: what it finds decides how it goes on, as does a duplicate
    # that read the step stored already (it stops there, running nothing).
    inline = _slice(backend, run, loop) if not again and stored_child is None else None
    seen: list = []
    try:
        loop.finish(idempotency_key=key, precondition=lease_precondition(run.thread_id, run.run_id, seen))
    except PreconditionFailed:
        # The run ended while the step ran (cancelled): store no step; keep
        # its tasks' writes, and settle the cancel.
        store_kept_writes(backend, run, msg.checkpoint_id)
        current = backend.runs.get_run(run.run_id)
        if current is not None and current.status == RunStatus.CANCELLED:
            settle_cancelled(backend, current)
            return {"status": "ok", "outcome": "cancelled"}
        return {"status": "ok", "outcome": f"ignored: run is {seen[0] if seen else 'gone'}"}
    except StepAlreadyFinished:
        # Stored before, by a delivery that may have died right after.
        publish(backend, run, loop, once=key)
        if kept:
            backend.step_writes.drop(run.run_id, msg.checkpoint_id)  # type: ignore[union-attr]
        if again or backend.step_writes is None:
            # That delivery may have run the next steps here too, unclaimed:
            # go on from the thread's latest checkpoint, as a redelivered
            # one-task step does. (Brokers without Redis do not say which
            # delivery is a redelivery: every one goes on; a step sent
            # twice runs its node twice and stores it once.)
            from lgdist.distributed.single_step import _continue_after_redelivery

            _continue_after_redelivery(backend, run, loop, msg.checkpoint_id)
        else:
            _continue_after_stored_step(backend, run, loop, msg.checkpoint_id)
        return {"status": "ok", "outcome": "stored before"}
    if kept and loop.status == "interrupted":
        # Nothing stored: the step stops at an interrupt; a resume runs
        # only the interrupted tasks.
        store_kept_writes(backend, run, msg.checkpoint_id)
        kept = []
    elif kept and not _keeps(inline):
        backend.step_writes.drop(run.run_id, msg.checkpoint_id)  # type: ignore[union-attr]
    crash_point("finish_step.stored", run.thread_id, loop.metadata["step"])
    after = None
    if loop.status != "pending":
        end_run_for_status(backend, run, loop, inline=inline)
    else:
        if _keeps(inline):
            inline.publish(loop)
        else:
            publish(backend, run, loop, once=key)
        after = _go_on(backend, run, loop, worker or backend.hostname, inline)
    refused = _settle_kept(backend, run, msg.checkpoint_id, inline, kept) if _keeps(inline) else None
    return {"status": "ok", "outcome": refused or "stored", **({"next": after} if after else {})}


def _slice(backend: Backend, run: Run, loop: ThreadLoop) -> Any:
    """The slice the callback's step opens (kept with it under durability
    "async"), else None."""
    from lgdist.distributed.single_step import InlineSlice
    from lgdist.distributed.slice_store import durability

    if durability(run) == "sync":
        return None
    return InlineSlice(backend, backend.settings.default_queue, run, loop)


def _keeps(inline: Any) -> bool:
    return inline is not None and inline.store is not None


def _settle_kept(backend: Backend, run: Run, checkpoint_id: str, inline: Any, kept: list[str]) -> Optional[str]:
    """The callback's slice is over (its steps stored with the run's end, or
    before a step left this worker): the writes its tasks kept in Redis
    are stored with it, so they go. If the slice was not stored (the run
    was cancelled or ended meanwhile), they are stored as the step's
    pending writes instead, as when the step's own store is refused.
    Returns the settle's refusal, if any (see ``SliceStore.settle``)."""
    refused = inline.settle()
    if not kept:
        return refused
    if refused is None or refused == "stored before":
        backend.step_writes.drop(run.run_id, checkpoint_id)  # type: ignore[union-attr]
    else:
        store_kept_writes(backend, run, checkpoint_id)
    return refused


def _go_on(backend: Backend, run: Run, loop: ThreadLoop, worker: str, inline: Any = None) -> Optional[dict]:
    """The callback stored its step: send the next one, or, when it has one
    task on the callback's queue, run it here, as a one-task step runs the
    next one (a slice of ``inline_steps`` / ``inline_ms``, see
    ``single_step``) — no message, no read of the state just stored. The
    outcome of the steps run here, if any. ``inline``: the slice the
    callback's step opened (durability "async"), else a new one.

    The step run here takes no claim: should this callback die, its
    redelivery (``again``) finds its step stored and goes on from the
    thread's latest checkpoint, whose step no one claimed — the one run
    here if it did not store it, else the one after it (under "async" it
    finds the step unstored, the writes its tasks kept still in Redis,
    and stores it first). A duplicate that runs while this callback is
    alive (not a redelivery) goes on only from this step's own checkpoint,
    through its claim: at worst it sends the step this callback is
    running, whose node then runs twice and whose checkpoint is stored
    once, as for any duplicated message."""
    from lgdist.distributed.nodes import execute_task
    from lgdist.distributed.single_step import InlineSlice, finish_single_step

    inline = inline or InlineSlice(backend, backend.settings.default_queue, run, loop)
    task = schedule_step(backend, run, loop, resumed=False, lease_fresh=True, inline=inline)
    if task is None:
        return None
    inline.take()
    parent_id = loop.checkpoint["id"]
    worker = f"{worker} (pid {os.getpid()})"
    result = {"node": task.name, "worker": worker, "status": "ok", **execute_task(backend, run, loop, task, save=False)}
    inline.ran(result)
    after = finish_single_step(
        backend, run, loop, task, result, checkpoint_id=parent_id, redelivered=False, worker=worker, inline=inline
    )
    return {"node": after["node"], "status": after["status"], "outcome": after.get("outcome")}


def _continue_after_stored_step(backend: Backend, run: Run, loop: ThreadLoop, parent_id: str) -> None:
    """The step after ``parent_id`` is stored; make sure the one after it is
    scheduled. Only while it is the thread's latest checkpoint: if the thread
    moved on, whoever stored the later checkpoint has scheduled from there."""
    latest = latest_loop(backend, run)
    if latest is None or latest.metadata.get("source") != "loop":
        return
    parent = (latest.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    if parent != parent_id:
        return
    ran = [t for t in loop.tasks.values() if t.node is not None]
    if latest.interrupt_after and should_interrupt(latest.checkpoint, latest.interrupt_after, ran):
        end_run(backend, run, RunStatus.INTERRUPTED, loop=loop)
        return
    schedule_step(backend, run, latest, resumed=False)


def task_failed(backend: Backend, name: str, payload: Any, exc: BaseException) -> None:
    """An lgdist task failed for good (a bug, a hard time limit, retries
    used up): its chord will not go on, so end the run with the reason
    rather than leave it running. Outages are left to the sweeper: the
    database may still be down, and the run can still finish. An outcome
    for a step that is no longer the thread's current one, or for a task
    that has saved writes (a copy re-run by the sweeper finished it),
    changes nothing."""
    from celery.exceptions import TimeLimitExceeded

    if isinstance(exc, TRANSIENT_ERRORS) or not isinstance(payload, dict):
        return
    run_id = payload.get("run_id")
    run = backend.runs.get_run(run_id) if isinstance(run_id, str) else None
    if run is not None and run.status == RunStatus.PENDING and name == "lgdist.start":
        thread = backend.runs.get_thread(run.thread_id)
        if thread is not None and thread["active_run_id"] == run.run_id:
            fail_pending_run(backend, run, f"lgdist.start failed inside lgdist: {type(exc).__name__}: {exc}")
        return
    if run is None or run.status != RunStatus.RUNNING:
        return
    checkpoint_id, task_id = payload.get("checkpoint_id"), payload.get("task_id")
    if isinstance(checkpoint_id, str) and not is_current_step(backend, run, checkpoint_id, task_id if isinstance(task_id, str) else None):
        log.warning("%s for step %s of run %s failed after the step moved on; ignored: %r", name, checkpoint_id, run.run_id, exc)
        return
    node = payload.get("node")
    _end_wide_step(backend, run, name, payload)
    if isinstance(exc, NodeFailedError):
        # The node's error is saved as its task's outcome. A chord whose
        # member failed does not call its finish_step: end the run here, as
        # finish_step would have, with the node's own error text.
        end_run(backend, run, RunStatus.ERROR, run.error or str(exc))
        return
    if isinstance(exc, TimeLimitExceeded):
        error = f"node {node!r} timed out: its process was killed at the hard time limit of {exc.args[0] if exc.args else '?'}s"
    else:
        what = f"node {node!r}" if name == "lgdist.run_node" else name
        error = f"{what} failed inside lgdist: {type(exc).__name__}: {exc}"
    if name == "lgdist.run_node" and isinstance(checkpoint_id, str) and isinstance(task_id, str):
        config = {"configurable": {"thread_id": run.thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}
        backend.saver.put_writes(config, [(ERROR, error)], task_id)
    end_run(backend, run, RunStatus.ERROR, error)


def _end_wide_step(backend: Backend, run: Run, name: str, payload: dict) -> None:
    """A task of a wide step failed for good: no callback follows, so the
    writes its siblings kept in Redis are stored now, and those that finish
    later store their own (see ``step_writes``)."""
    checkpoint_id = payload.get("checkpoint_id")
    if name != "lgdist.run_node" or payload.get("finish") or backend.step_writes is None:
        return
    if isinstance(checkpoint_id, str):
        store_kept_writes(backend, run, checkpoint_id, backend.step_writes.end(run.run_id, checkpoint_id))
