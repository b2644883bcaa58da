"""``lgdist.run_node``: run one task of a step on this worker.

A task of a wide step keeps its writes in the broker's Redis for the
step's chord callback (``finish_step``), which stores them with the next
checkpoint in one transaction (:mod:`lgdist.distributed.step_writes`);
without Redis it saves them as pending writes keyed by ``(checkpoint,
task)``. Either way any number of deliveries keep one outcome. An error or
an interrupt is always saved in the store. The only task of a step also
finishes the step itself (:mod:`lgdist.distributed.single_step`): no chord,
no pending-write row.

Round-trip budget (counted by tests/distributed/test_round_trips.py):

* Redis: nothing before the node for a first delivery (Redis marks the
  messages it gives back, Celery counts retries); one pipelined call counts
  any later delivery;
* Postgres, before the node: one statement reads the run's fields (not its
  input) with the step's checkpoint row and touches the thread's lease
  (unless fresh: then it writes nothing and commits without a WAL flush); at
  most one more reads the channels this process has not decoded; one more
  the pending writes, only where the step may have some — all on one
  pooled connection, no pre-ping. A wide step's task skips all of it, and
  the planning of the step, when this process sent the step or another
  task of the same step did them in this process (first deliveries only):
  a width-w step on p worker processes makes at most p - 1 reads, not w;
* after the node, a one-task step: one Postgres transaction — the lease
  touch + run check, the checkpoint, its blobs and the task's writes — and
  one Redis call for the step's stream events;
* after the node, a wide step's task: one Redis transaction keeps its
  writes and publishes its stream events; no Postgres at all. Its callback:
  one statement reads the run and the checkpoint row, one its pending
  writes, one Redis call the kept writes, one transaction stores the
  lease touch + run check, the checkpoint, its blobs and every task's
  writes. A one-task step after it on the callback's queue runs in the
  callback: no message and no read, one transaction to store it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator, Optional

from lgdist.distributed.backend import Backend
from lgdist.distributed import lifecycle
from lgdist.distributed.coordinator import NODE_MODES, WORKER_MODE, apply_stop, is_current_step, make_loop, rejected
from lgdist.distributed.run_end import publish_events, settle_cancelled
from lgdist.distributed.deliveries import RedisDeliveries
from lgdist.distributed.events import RedisEventBus, wire_events
from lgdist.distributed.failure import describe_node_failure
from lgdist.distributed.leases import HEARTBEATS
from lgdist.distributed.lifecycle import RunStatus
from lgdist.distributed.messages import RunNodeMessage
from lgdist.distributed.step_reads import read_step, recent_loop, recent_step, remember_loop, remember_step
from lgdist.distributed.step_writes import RedisStepWrites
from lgdist.constants import PULL
from lgdist.engine import mark_resumed
from lgdist.engine.tasks import Task
from lgdist.graph.node import needs_async_run
from lgdist.loop import ThreadLoop


def run_node(
    backend: Backend,
    msg: RunNodeMessage,
    worker: Optional[str] = None,
    retries: int = 0,
    message_id: Optional[str] = None,
    redelivered: bool = False,
) -> dict:
    """``lgdist.run_node``: run one task and save its writes (or, for the
    step's only task, finish the step). Never raises for a node's own
    failure: the error is saved as the task's outcome so the chord
    completes and ``finish_step`` ends the run with it.

    ``redelivered``: the broker says this message was given back after its
    worker was lost (Redis marks such messages). On other brokers a second
    delivery count of the message id stands for it; a Celery retry
    (``retries``) counts as one everywhere."""
    worker = f"{worker or backend.hostname} (pid {os.getpid()})"
    result = {"node": msg.node, "worker": worker, "status": "ok"}
    deliveries = _count_delivery(backend, message_id or f"{msg.checkpoint_id}.{msg.task_id}", redelivered, retries)
    # A one-task step saves no writes, so its checkpoint has pending writes
    # only where a run resumes (answers, a Command's update) or where an
    # earlier delivery of this message left some (an error, an interrupt);
    # a wide step's, where the coordinator saw some when it sent the step.
    wide = not msg.finish
    with_writes = (msg.step_has_writes if wide else msg.resumed) or deliveries > 1
    # A Celery retry follows an attempt of this message that is over (it
    # raised): like a redelivery, it goes on for that attempt if it finds
    # the step stored. Elsewhere than on Redis a second count stands for
    # the broker's redelivered mark.
    redelivered = redelivered or retries > 0
    if not isinstance(backend.deliveries, RedisDeliveries):
        redelivered = redelivered or deliveries > 1
    read = recent_step(msg.run_id, msg.checkpoint_id, with_writes=with_writes) if wide and deliveries == 1 else None
    step = recent_loop(msg.run_id, msg.checkpoint_id) if read is not None else None
    if read is not None and step is None and read.saved is None:
        read = None  # kept by its sender, without the stored row: read it
    cached = read is not None
    if read is None:
        read = read_step(backend, msg.run_id, msg.checkpoint_id, with_writes=with_writes)
        if wide:
            remember_step(msg.run_id, msg.checkpoint_id, read, with_writes=with_writes)
    run, saved, stored_child = read
    if run is None or run.status != RunStatus.RUNNING:
        if msg.finish and run is not None and run.status == RunStatus.CANCELLED and run.thread_id == msg.thread_id:
            # No finish_step follows a one-task step: settle the run as it would.
            settle_cancelled(backend, run)
        elif msg.finish and redelivered and run is not None and run.thread_id == msg.thread_id:
            # The first delivery may have ended the run with the slice it
            # stored, and died before streaming them.
            from lgdist.distributed.restream import restream

            restream(backend, run, msg.checkpoint_id)
        return {**result, "status": "skipped"}
    if (run.thread_id, run.graph) != (msg.thread_id, msg.graph):
        return {**result, **rejected(
            f"lgdist.run_node: run {run.run_id} is graph {run.graph!r} on thread {run.thread_id!r}, "
            f"not {msg.graph!r} on {msg.thread_id!r}"
        )}  # fmt: skip
    if step is not None:
        # This process sent the step, or another task of it restored and planned it here.
        loop = step.sibling()
        task = _task_of(loop, step.tasks, msg.task_id)
    else:
        loop = make_loop(backend, run, checkpoint_id=msg.checkpoint_id)
        if saved is None or loop.restore(saved) is None or loop.checkpoint["id"] != msg.checkpoint_id:
            return {**result, "status": "error", "error": f"checkpoint {msg.checkpoint_id} not found"}
        apply_stop(run, loop)
        if msg.resumed:
            mark_resumed(loop.checkpoint)
        task = _plan_task(loop, msg) if wide else loop.plan_task(msg.task_id)
    if task is None:
        return {**result, "status": "error", "error": f"task {msg.task_id} is not part of step {msg.checkpoint_id}"}
    if msg.finish and stored_child is not None:
        from lgdist.distributed.single_step import stored_before

        return stored_before(backend, run, loop, result, checkpoint_id=msg.checkpoint_id, redelivered=redelivered)
    outcome = loop.outcome(task)
    if wide and (outcome.completed or stored_child is not None or _kept_before(backend, run, msg, deliveries)):
        return {**result, "status": "done-before"}
    if outcome.completed:
        task.writes = outcome.writes  # an earlier delivery ran it: finish the step with those writes
    elif deliveries - retries > backend.settings.max_deliveries:
        # Celery retries after an outage count as deliveries too; they are
        # not a worker dying on this node.
        error = (
            f"node {task.name!r} was delivered {deliveries - retries} times without finishing "
            "(its worker died each time); parked as a poison task"
        )
        loop.record(task, RuntimeError(error))
        result.update(status="error", error=error, run_error=error)
        _note_failure(task.name, error)
    else:
        # A wide step's task keeps its writes in Redis for the callback,
        # where there is one (see step_writes); else it stores them.
        result.update(execute_task(backend, run, loop, task, save=not msg.finish and backend.step_writes is None))
    if msg.finish:
        from lgdist.distributed.single_step import finish_single_step

        return finish_single_step(
            backend, run, loop, task, result, checkpoint_id=msg.checkpoint_id, redelivered=redelivered, worker=worker
        )
    if result.get("run_error"):
        lifecycle.note(backend.runs, run.run_id, expect=(RunStatus.RUNNING,), error=result.pop("run_error"))
    events = node_events(loop, task, worker, result)
    if result["status"] == "ok" and backend.step_writes is not None:
        _keep_writes(backend, backend.step_writes, run, loop, task, events)
    else:
        publish_events(backend, run.run_id, events)
    # Which worker ran it, when and how long went to the stream (the
    # ``lgdist:worker`` event): the task's result, which Celery writes out
    # and pushes to its chord's list, says only what came of it.
    return {key: result[key] for key in ("node", "status", "error") if key in result}


def _count_delivery(backend: Backend, key: str, redelivered: bool, retries: int) -> int:
    """Which delivery of the message this is. Redis marks a message it
    gives back (``redelivered``) and Celery counts its retries, so a first
    delivery there is known without a round trip: only later ones are
    counted (the first one plus those). Other brokers count every one."""
    if not isinstance(backend.deliveries, RedisDeliveries):
        return backend.deliveries.count(key)
    if not redelivered and not retries:
        return 1
    return 1 + backend.deliveries.count(key)


def _plan_task(loop: ThreadLoop, msg: RunNodeMessage) -> Optional[Task]:
    """A wide step's task, ready to run, planned as ``loop.plan_task``
    does; the step's restored loop and plan are kept for its other tasks
    in this process (when its read is, see ``step_reads``)."""
    task = loop.plan_task(msg.task_id)
    remember_loop(msg.run_id, msg.checkpoint_id, loop)
    return task


def _task_of(loop: ThreadLoop, plan: dict, task_id: str) -> Optional[Task]:
    """Task ``task_id`` of a step's ``plan`` (tasks without inputs, as
    another task of the step planned them), on ``loop``: a copy of its own,
    with only its input read."""
    planned = plan.get(task_id)
    if planned is None:
        return None
    task = dataclasses.replace(planned, writes=[])
    loop.tasks = {**plan, task_id: task}
    if task.node is not None and task.path and task.path[0] == PULL:
        task.input = task.node.read_input(loop.channels)
    return task


def _kept_before(backend: Backend, run: Any, msg: RunNodeMessage, deliveries: int) -> bool:
    """Whether an earlier delivery of this wide step's task kept its
    writes already (asked of a redelivery only)."""
    return deliveries > 1 and backend.step_writes is not None and backend.step_writes.has(
        run.run_id, msg.checkpoint_id, msg.task_id
    )


def _keep_writes(backend: Backend, store: RedisStepWrites, run: Any, loop: ThreadLoop, task: Task, events: list) -> None:
    """Keep a wide step's task writes for its callback and publish the
    task's stream events, in one Redis round trip. If the step was ended
    meanwhile (a sibling failed: no callback follows), store the writes."""
    bus = backend.bus
    stream = ""
    if isinstance(bus, RedisEventBus) and events:
        stream = bus.stream_key(run.run_id)
    elif events:
        publish_events(backend, run.run_id, events)
    wired = wire_events(events) if stream else ()
    if store.keep(run.run_id, loop.checkpoint["id"], task.id, task.writes, wired, stream):
        backend.saver.put_writes(loop.checkpoint_config, task.writes, task.id)


def execute_task(backend: Backend, run: Any, loop: ThreadLoop, task: Task, *, save: bool) -> dict:
    """Run ``task``'s node and record its outcome in ``loop`` (saving its
    writes unless ``save`` is false; an error or interrupt is always saved).
    Returns the result fields: ``status``, ``started_at`` and ``seconds``,
    and for a failure ``error`` and ``run_error`` (the run's error text)."""
    from celery.exceptions import SoftTimeLimitExceeded

    from lgdist.engine.execute import arun_task, make_fresh_reader, run_task
    from lgdist.errors import GraphInterrupt
    from lgdist.loop.task_run import after_task, prepare_task, task_callbacks
    from lgdist.runtime import coerce_context

    callbacks, handler = task_callbacks(loop)
    context = coerce_context(getattr(backend.registry.get(run.graph), "context_schema", None), run.options.get("context"))
    config, ctx = prepare_task(loop, task, callbacks, context, backend.store)
    if "custom" in loop.modes:
        ctx.stream_writer = lambda chunk: publish_events(backend, run.run_id, [("custom", chunk)])
        if ctx.runtime is not None:
            ctx.runtime = ctx.runtime.override(stream_writer=ctx.stream_writer)
    started_at, clock = time.time(), time.monotonic()
    timing = {"started_at": started_at}
    try:
        with HEARTBEATS.hold(backend, run.thread_id):
            if needs_async_run(task.node):
                # A worker has no caller to pick the async API: it picks it
                # for a node with an async-only function or router.
                asyncio.run(arun_task(task, config, ctx, make_fresh_reader(loop.channels)))
            else:
                run_task(task, config, ctx, make_fresh_reader(loop.channels))
    except GraphInterrupt:
        loop.record(task)
        return {"status": "interrupted", **timing, "seconds": time.monotonic() - clock}
    except SoftTimeLimitExceeded as exc:
        if not is_current_step(backend, run, loop.checkpoint["id"], task.id):
            # A copy of this task re-run elsewhere (the sweeper took this
            # one for lost) finished it, or the thread moved on: this
            # outcome changes nothing.
            del exc
            return {"status": "stale", **timing, "seconds": time.monotonic() - clock}
        limit = backend.settings.task_time_limit
        text = f"node {task.name!r} timed out: it ran past the task time limit of {limit}s (LGDIST_TASK_TIME_LIMIT)"
        loop.record(task, TimeoutError(text))
        del exc
        _note_failure(task.name, text)
        return {"status": "error", "error": text, "run_error": text, **timing, "seconds": time.monotonic() - clock}
    except (SystemExit, KeyboardInterrupt):
        raise  # the worker is stopping this process (e.g. at the hard time limit), not a node failure
    except BaseException as exc:  # noqa: BLE001 - the node's failure is the task's outcome
        loop.record(task, exc)
        _note_failure(task.name, f"{type(exc).__name__}: {exc}")
        return {
            "status": "error", "error": f"{type(exc).__name__}: {exc}", "run_error": describe_node_failure(task.name, exc),
            **timing, "seconds": time.monotonic() - clock,
        }  # fmt: skip
    seconds = time.monotonic() - clock
    # The local runner's rule, so that e.g. __start__ streams no messages.
    after_task(loop, task, handler, config)
    loop.record(task, save=save)
    return {"status": "ok", **timing, "seconds": seconds}


_FAILURES: ContextVar[Optional[list]] = ContextVar("lgdist_node_failures", default=None)


@contextmanager
def node_failures() -> Iterator[list]:
    """Collect ``(node, error)`` for every node that fails while the block
    runs (a task may run several one-task steps inline): the task raises
    afterwards, so that Flower lists it as failed."""
    failures: list = []
    token = _FAILURES.set(failures)
    try:
        yield failures
    finally:
        _FAILURES.reset(token)


def _note_failure(node: str, error: str) -> None:
    failures = _FAILURES.get()
    if failures is not None:
        failures.append((node, error))


def is_node_event(item: tuple) -> bool:
    """Chunks only the process running a node produces: node-level modes,
    and every chunk of a subgraph it ran (those carry their namespace)."""
    return item[0] in NODE_MODES or len(item) > 2


def node_events(loop: ThreadLoop, task: Task, worker: str, result: dict) -> list:
    """The events only the worker that ran a node can stream: its node
    chunks and which worker ran it, when and for how long (the API's
    metrics and thread inspector read these)."""
    events: list[Any] = [item for item in loop.outbox if is_node_event(item)]
    events.append((WORKER_MODE, {
        "node": task.name, "task_id": task.id, "worker": worker, "status": result["status"],
        "started_at": result.get("started_at", time.time()), "seconds": result.get("seconds", 0.0),
    }))  # fmt: skip
    return events
