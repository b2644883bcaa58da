"""A step with one task needs no chord: the task finishes the step.

    run_node(finish) ──► node ──► store checkpoint ──► send next step
                                     (step:<parent>)    (or run it here)

What ``finish_step`` does for a chord, the one task does right after its
node: apply its writes, store the next checkpoint under ``step:<parent>``
(one transaction that also touches the thread's lease and checks the run
is still running, see :func:`lease_precondition`), stream the step's
events, then plan the next step. When that step again has one task on the
same queue, this worker runs it too, with the state in memory and one
checkpoint per step, for a bounded slice (``inline_steps`` /
``inline_ms``) before it sends the next step to the queue, so other threads
get their turn.

Exactly once, as with chords: a redelivered message (its first delivery
died) finds the step stored (``StepAlreadyFinished``) and sends the step
after the thread's latest checkpoint, guarded by the step marker; a first
delivery that finds its step stored is a duplicate and does nothing more.
Interrupts, errors, cancel and the recursion limit end the run as
``finish_step`` would.
"""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from typing import ContextManager, Optional
from lgdist.checkpoint.base import PreconditionFailed
from lgdist.distributed.backend import Backend
from lgdist.distributed.coordinator import end_run_for_status, latest_loop, record_start, schedule_step, step_key
from lgdist.distributed.run_end import end_run, publish, publish_events, settle_cancelled
from lgdist.distributed.crashpoints import crash_point
from lgdist.distributed.leases import lease_precondition
from lgdist.distributed.runs import Run
from lgdist.distributed.slice_store import SliceStore, durability
from lgdist.engine import should_interrupt
from lgdist.engine.tasks import Task
from lgdist.loop import StepAlreadyFinished, ThreadLoop

log = logging.getLogger("lgdist.single_step")


class InlineSlice:
    """How many more one-task steps this worker may run before it yields.

    The time budget (``inline_ms``) counts the slice's nodes, not its
    stores and messages: a slow node is what keeps other threads waiting,
    while the store's round trips only stretch when the machine is loaded
    — and splitting a run there would add a message and a read per split,
    the machine's work growing with its load."""

    def __init__(
        self, backend: Backend, queue: str, run: Run, loop: ThreadLoop, *, new_thread: bool = False, keep: bool = True
    ) -> None:
        self.queue = queue
        self.steps_left = backend.settings.inline_steps
        self.node_seconds_left = backend.settings.inline_ms / 1000
        self.settings = backend.settings
        self.backend = backend
        self.run = run
        # Durability "async" (and "exit"): the slice's checkpoints are kept
        # and stored together when it ends (see slice_store) — unless
        # ``keep`` is off: then each step is stored as it finishes.
        self.store: Optional[SliceStore] = None
        if keep and durability(run) != "sync" and hasattr(loop.saver, "plan_put"):
            self.store = SliceStore(backend, run, loop.saver, new_thread=new_thread)
            loop.saver = self.store  # type: ignore[assignment]

    def allows(self, loop: ThreadLoop, task: Task) -> bool:
        # Breakpoints after a step are decided by whoever stored it: a step
        # run here must not need that decision from a redelivery.
        if self.steps_left <= 0 or self.node_seconds_left < 0 or loop.interrupt_after:
            return False
        if self.settings.task_time_limit:
            return False  # the time limit is per node: each node gets a task of its own
        return self.settings.queue_for(task.name) == self.queue

    def take(self) -> None:
        self.steps_left -= 1

    def ran(self, result: dict) -> None:
        """A node of the slice ran for ``result["seconds"]``."""
        self.node_seconds_left -= result.get("seconds", 0.0)

    def publish(self, loop: ThreadLoop, once: Optional[str] = None) -> None:
        """Stream the loop's pending events after the slice's steps kept so far."""
        if self.store is None:
            publish(self.backend, self.run, loop, once=once)
            return
        self.store.defer_events(list(loop.outbox))
        loop.outbox.clear()

    def record_start(self, loop: ThreadLoop) -> None:
        """``coordinator.record_start``, stored with the slice."""
        if self.store is None:
            record_start(self.backend, self.run, loop)
            return
        self.store.note(start_step=loop.step, stop_step=loop.stop)
        self.run.start_step, self.run.stop_step = loop.step, loop.stop

    def running_node(self) -> ContextManager:
        """Around a node of the slice: a node still running after
        ``inline_ms`` does not hold the slice's kept steps back."""
        if self.store is None:
            return nullcontext()
        return self.store.running_node(self.settings.inline_ms / 1000)

    def settle(self) -> Optional[str]:
        """The slice ends here (the run ends or stops, or a step leaves this
        worker): store and stream what it kept. None when done; else the
        outcome that stops the run here (see ``SliceStore.settle``)."""
        return self.store.settle() if self.store is not None else None


def start_steps(backend: Backend, run: Run, loop: ThreadLoop, inline: InlineSlice, *, resumed: bool) -> None:
    """``lgdist.start`` loaded the run's input: schedule the first step, or,
    when it has one task on the default queue, run it (and the one-task
    steps after it, for a slice) in this same task — a short run then
    costs one message. A redelivered start continues from the thread's
    latest checkpoint, which no one claimed, as after a one-task step."""
    from lgdist.distributed.nodes import execute_task

    parent_id = loop.checkpoint["id"]
    task = schedule_step(backend, run, loop, resumed=resumed, inline=inline)
    if task is None:
        return
    inline.take()
    worker = f"{_worker_name(backend)} (pid {os.getpid()})"
    result = {"node": task.name, "worker": worker, "status": "ok", **execute_task(backend, run, loop, task, save=False)}
    inline.ran(result)
    finish_single_step(
        backend, run, loop, task, result, checkpoint_id=parent_id, redelivered=False, worker=worker, inline=inline
    )


def _worker_name(backend: Backend) -> str:
    """The Celery worker running this task (its node name, as run_node
    reports it), else the host."""
    from celery import current_task

    request = getattr(current_task, "request", None)
    return getattr(request, "hostname", None) or backend.hostname


def finish_single_step(
    backend: Backend,
    run: Run,
    loop: ThreadLoop,
    task: Task,
    result: dict,
    *,
    checkpoint_id: str,
    redelivered: bool,
    worker: str,
    inline: "InlineSlice | None" = None,
) -> dict:
    """The node of the step's only task ran (``result``): finish the step,
    then run or send the next ones."""
    from lgdist.distributed.nodes import execute_task, is_node_event, node_events

    if inline is None:
        inline = InlineSlice(backend, backend.settings.queue_for(task.name), run, loop)
        inline.ran(result)
    while True:
        events = node_events(loop, task, worker, result)
        kept = [e for e in loop.outbox if not is_node_event(e)]
        loop.outbox.clear()
        loop.outbox.extend(kept)
        if result["status"] == "stale":
            return {**result, "outcome": "ignored: the step moved on", "checkpoint_id": checkpoint_id}
        if result["status"] == "error":
            refused = inline.settle()
            if refused is not None:
                return {**result, "outcome": refused, "checkpoint_id": checkpoint_id}
            publish_events(backend, run.run_id, events)
            end_run(backend, run, "error", result.pop("run_error", None) or result.get("error"))
            return {**result, "outcome": "run failed", "checkpoint_id": checkpoint_id}
        outcome = _store_step(backend, run, loop, checkpoint_id, events, first=not redelivered, inline=inline)
        redelivered = False  # steps run inline below are this delivery's own
        if outcome["outcome"] != "stored" or loop.status != "pending":
            return {**result, **outcome, "checkpoint_id": checkpoint_id}
        # The store touched the lease: sending a wide step needs no touch of its own.
        nxt = schedule_step(backend, run, loop, resumed=False, inline=inline, lease_fresh=True)
        if nxt is None:
            return {**result, **outcome, "checkpoint_id": checkpoint_id}
        # The next step has one task on this queue: run it here.
        inline.take()
        task, checkpoint_id = nxt, loop.checkpoint["id"]
        with inline.running_node():
            result = {**result, "node": task.name, **execute_task(backend, run, loop, task, save=False)}
        inline.ran(result)


def _store_step(
    backend: Backend, run: Run, loop: ThreadLoop, parent_id: str, events: list, *, first: bool, inline: InlineSlice
) -> dict:
    """Apply the step's writes and store its checkpoint once; stream the
    node's and the step's events (one publish). ``first``: this is the
    first delivery of the message, not a redelivery. Under durability
    "async" the checkpoint and the events wait for the slice's end (a
    redelivery's first step is stored at once: what it finds decides how
    it goes on)."""
    key = step_key(run, parent_id)
    if loop.interrupted_tasks or loop.interrupts:
        loop.finish()
        if inline.store is not None:
            inline.store.defer_events(events)
        else:
            publish_events(backend, run.run_id, events)
        end_run_for_status(backend, run, loop, inline=inline)
        return {"outcome": "interrupted"}
    if inline.store is not None:
        inline.store.deferring = first
        if first:
            loop.finish(idempotency_key=key)
            crash_point("finish_step.stored", run.thread_id, loop.metadata["step"])
            inline.store.defer_events(events + list(loop.outbox))
            loop.outbox.clear()
            if loop.status != "pending":
                # The slice's steps and the run's end: one transaction.
                end_run_for_status(backend, run, loop, inline=inline)
            return {"outcome": "stored"}
    seen: list = []
    try:
        loop.finish(idempotency_key=key, precondition=lease_precondition(run.thread_id, run.run_id, seen))
    except PreconditionFailed:
        # The run ended while its node ran (cancelled): store nothing, and
        # do what finish_step does for a cancelled run.
        current = backend.runs.get_run(run.run_id)
        if current is not None and current.status == "cancelled":
            settle_cancelled(backend, current)
            return {"outcome": "cancelled"}
        return {"outcome": f"ignored: run is {seen[0] if seen else 'gone'}"}
    except StepAlreadyFinished:
        # Stored while the node ran: by a duplicate of this message (then
        # this one stops here) or, for a redelivery, by its first delivery,
        # which may have died right after (then this one goes on for it).
        publish_events(backend, run.run_id, events, once=key)
        loop.outbox.clear()
        if not first:
            _continue_after_redelivery(backend, run, loop, parent_id)
        return {"outcome": "stored before"}
    finally:
        if inline.store is not None:
            inline.store.deferring = True
    crash_point("finish_step.stored", run.thread_id, loop.metadata["step"])
    publish_events(backend, run.run_id, events + list(loop.outbox), once=key)
    loop.outbox.clear()
    if loop.status != "pending":
        end_run_for_status(backend, run, loop)
    return {"outcome": "stored"}


def stored_before(
    backend: Backend, run: Run, loop: ThreadLoop, result: dict, *, checkpoint_id: str, redelivered: bool
) -> dict:
    """The step was stored already: the node does not run again. A first
    delivery is a duplicate of a live message and stops here; a
    redelivery goes on for its first delivery, which may have died."""
    if redelivered:
        _continue_after_redelivery(backend, run, loop, checkpoint_id)
    return {**result, "status": "done-before", "outcome": "stored before", "checkpoint_id": checkpoint_id}


def _continue_after_redelivery(backend: Backend, run: Run, loop: ThreadLoop, parent_id: str) -> None:
    """A redelivered one-task step found its checkpoint stored: its first
    delivery died after storing it (and maybe after storing more steps run
    inline, and the run's end with them). Stream the values of the steps
    stored since that the dead delivery may not have published (once per
    step, see ``restream``), then send the step after the thread's latest
    checkpoint unless it was sent (the step claim decides) or the run ended."""
    from lgdist.distributed.restream import restream

    current = backend.runs.get_run(run.run_id)
    if current is None:
        return
    restream(backend, current, parent_id)
    if current.status != "running":
        return
    latest = latest_loop(backend, current)
    if latest is None or latest.metadata.get("source") != "loop":
        return
    parent = (latest.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    if parent == parent_id:
        ran = [t for t in loop.tasks.values() if t.node is not None]
        if latest.interrupt_after and should_interrupt(latest.checkpoint, latest.interrupt_after, ran):
            end_run(backend, current, "interrupted", loop=latest)
            return
    schedule_step(backend, current, latest, resumed=False)
