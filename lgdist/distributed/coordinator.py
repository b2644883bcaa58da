"""The coordinator: turns each superstep of a thread into a Celery chord.

    start/resume ──► schedule_step ──► chord(group(run_node × tasks), finish_step)
                          ▲                                           │
                          └──────────── next step ◄───────────────────┘
                                (a one-task next step runs in finish_step)

Every function here tolerates being run twice for the same step (duplicated
or redelivered messages): node writes are keyed by ``(checkpoint, task)``,
and the next checkpoint's insert carries the key ``step:<parent id>``, so a
second ``finish_step`` stores nothing.

A worker can also die *between* two effects: after ``finish_step`` stored a
checkpoint and before it sent the next chord, or after ``lgdist.start``
loaded the input. The message is then redelivered (``acks_late`` +
``task_reject_on_worker_lost``) and finds its work half done, so the
redelivery finishes it: it continues from the thread's latest checkpoint.
Sending a step's chord is guarded by an insert-once marker per
``(checkpoint, run)`` (see :func:`claim_step`), so a redelivery racing a
live first delivery never sends a step twice. Only the sweeper (a stalled
step: its messages were lost) sends a step again on purpose.
"""

from __future__ import annotations

import logging
import os
import traceback
from typing import Any, Optional

from celery import chord

from lgdist.checkpoint.base import BaseCheckpointSaver, PreconditionFailed
from lgdist.constants import ERROR
from lgdist.distributed.backend import Backend
from lgdist.distributed.crashpoints import crash_point
from lgdist.distributed import lifecycle
from lgdist.distributed.events import wire_events
from lgdist.distributed.messages import FinishStepMessage, RunNodeMessage
from lgdist.distributed.lifecycle import RunStatus, ThreadStatus
from lgdist.distributed.runs import Run
from lgdist.distributed.step_writes import store_kept_writes, take_kept_writes
from lgdist.distributed.transient import TRANSIENT_ERRORS
from lgdist.engine import mark_resumed, plan_next_step, should_interrupt
from lgdist.engine.tasks import Task
from lgdist.errors import GraphNotRegisteredError, LgdistError, NodeFailedError
from lgdist.loop import DEFAULT_RECURSION_LIMIT, StepAlreadyFinished, ThreadLoop
from lgdist.types import Command

log = logging.getLogger("lgdist.coordinator")

# The thread status a run leaves behind when it ends.
THREAD_STATUS = lifecycle.THREAD_AFTER

# Stream modes that only the process running a node can produce.
NODE_MODES = ("custom", "messages")
WORKER_MODE = "lgdist:worker"


def make_loop(backend: Backend, run: Run, checkpoint_id: Optional[str] = None) -> ThreadLoop:
    """A loop over the run's thread at ``checkpoint_id``; without one, at the
    checkpoint the run's config names (a replay) or else the latest."""
    graph = backend.registry.get(run.graph)
    configurable: dict = {"thread_id": run.thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    options = run.options
    config = {
        "configurable": {**(options.get("configurable") or {}), **configurable},
        "metadata": dict(options.get("metadata") or {}),
        "recursion_limit": options.get("recursion_limit") or DEFAULT_RECURSION_LIMIT,
    }
    spec = graph.get_graph_spec()
    return ThreadLoop(
        spec,
        config,
        saver=backend.saver,
        stream_modes=options.get("stream_modes") or ["values"],
        # Chunks show every state key, as a compiled graph's stream() does;
        # RemoteGraph.invoke narrows the result to the output schema.
        output_keys=spec.stream_keys,
        interrupt_before=options.get("interrupt_before"),
        interrupt_after=options.get("interrupt_after"),
        stream_subgraphs=bool(options.get("subgraphs")),
    )


def latest_loop(backend: Backend, run: Run) -> Optional[ThreadLoop]:
    """A loop restored at the thread's latest checkpoint (never a replay's
    starting point), with the run's recursion budget; None without one."""
    loop = make_loop(backend, run)
    loop.config["configurable"].pop("checkpoint_id", None)
    if loop.restore() is None:
        return None
    apply_stop(run, loop)
    return loop


def step_key(run: Run, parent_id: str) -> str:
    """See :meth:`Run.step_key`."""
    return run.step_key(parent_id)


def forked_from(run: Run) -> Optional[str]:
    return run.forked_from


def record_start(backend: Backend, run: Run, loop: ThreadLoop) -> None:
    """Remember the step the run starts at and the step past which it hits
    its recursion limit, as the loop computed it when it loaded the input
    (the local runtime's budget, whether or not the input stored a step)."""
    lifecycle.note(backend.runs, run.run_id, start_step=loop.step, stop_step=loop.stop)
    run.start_step, run.stop_step = loop.step, loop.stop


def apply_stop(run: Run, loop: ThreadLoop) -> None:
    """Give a loop restored mid-run the run's recursion budget."""
    if run.stop_step is not None:
        loop.stop = run.stop_step
    elif run.start_step is not None:
        loop.stop = run.start_step + loop.recursion_limit + 1


def resumed_here(run: Run, loop: ThreadLoop) -> bool:
    """Whether ``loop`` is at the step a resuming run started from; if so it
    is marked resumed, as loading the resume marked it the first time (a
    breakpoint it stopped at must not stop it again)."""
    resumed = _resumes(run) and run.start_step is not None and loop.step == run.start_step
    if resumed:
        mark_resumed(loop.checkpoint)
    return resumed


def publish(backend: Backend, run: Run, loop: ThreadLoop, once: Optional[str] = None) -> None:
    """Stream the loop's pending events. Best effort: the stream is a view,
    the checkpoint store is the record, and a reader that misses events
    still ends (it falls back to the run record)."""
    events = list(loop.outbox)
    loop.outbox.clear()
    publish_events(backend, run.run_id, events, once=once)


def publish_events(backend: Backend, run_id: str, events: list, once: Optional[str] = None) -> None:
    if not events:
        return
    try:
        backend.bus.publish(run_id, wire_events(events), once=once)
    except TRANSIENT_ERRORS as exc:
        log.warning("run %s: %d stream event(s) lost: %s", run_id, len(events), exc)


def publish_end(
    backend: Backend, run_id: str, status: str, error: Optional[str] = None, *, thread_deleted: bool = False
) -> None:
    """The run's last stream event (best effort, like every event);
    ``thread_deleted``: the run's thread went with its end."""
    end = {"status": str(status), "error": error, **({"thread_deleted": True} if thread_deleted else {})}
    publish_events(backend, run_id, [("__end__", end)])


def end_run(
    backend: Backend,
    run: Run,
    status: str,
    error: Optional[str] = None,
    loop: Optional[ThreadLoop] = None,
    inline: Any = None,
) -> bool:
    """Move a running run to its final status and release its thread (one
    transaction), tell the stream readers, and start the thread's next
    enqueued run. Only the first caller for a run does anything; it also
    publishes ``loop``'s last events (an interrupt's chunks), which must
    reach the stream before its end event: readers stop there. A run
    cancelled meanwhile is settled instead: its step has stopped.

    ``inline``: the slice (see ``single_step``) whose kept steps are stored
    in the same transaction as the run's end."""
    status = RunStatus(status)
    delete_thread = run.options.get("on_completion") == "delete"
    # One transaction: the run's status, its thread's release (or, for a
    # run submitted with on_completion="delete", the thread's deletion) and
    # the runs queued on the thread.
    if inline is not None and inline.store is not None:
        found: list = []
        refused = inline.store.settle(
            lambda conn: found.append(lifecycle.finish_in(conn, run.run_id, status, error=error, delete_thread=delete_thread)),
            discard=delete_thread,
        )
        if refused is not None:
            return False  # the slice settled it (a cancel), or the run ended elsewhere
        ended = found[-1] if found else None
    else:
        ended = lifecycle.finish(backend.runs, run.run_id, status, error=error, delete_thread=delete_thread)
    if ended is None:
        current = backend.runs.get_run(run.run_id)
        if current is not None and current.status == RunStatus.CANCELLED:
            settle_cancelled(backend, current)
        return False
    if loop is not None:
        publish(backend, run, loop)
    publish_end(backend, run.run_id, status, ended.error, thread_deleted=ended.thread_deleted)
    if not ended.thread_deleted:
        start_next_enqueued(backend, run.thread_id, queued=ended.queued)
    return True


def resting_status(backend: Backend, thread_id: str, graph: str, otherwise: ThreadStatus) -> ThreadStatus:
    """The status a thread rests in when its run stops without finishing its
    step (cancelled, failed before it started): ``interrupted`` - resumable -
    while its latest checkpoint still has tasks to run or interrupts to
    answer, else ``otherwise``."""
    from lgdist.engine import channels_from_checkpoint, plan_next_step

    try:
        spec = backend.registry.get(graph).get_graph_spec()
    except Exception:  # noqa: BLE001 - an unloadable graph has nothing to resume
        return otherwise
    saved = backend.saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    if saved is None:
        return otherwise
    channels = channels_from_checkpoint(spec.channels, saved.checkpoint)
    step = saved.metadata.get("step", -2) + 1
    if plan_next_step(spec, saved.checkpoint, channels, step, read_inputs=False):
        return ThreadStatus.INTERRUPTED
    return otherwise


def settle_cancelled(backend: Backend, run: Run) -> bool:
    """A cancelled run's step has stopped: free its thread (resumable if the
    step left work behind) and end its stream. Idempotent."""
    roll_back = run.options.get("roll_back")
    # A rolled-back run leaves the thread as its target checkpoint says: the
    # canceller restates that status once the run's checkpoints are gone.
    rest = ThreadStatus.IDLE if roll_back is not None else resting_status(backend, run.thread_id, run.graph, ThreadStatus.IDLE)
    if not lifecycle.release_ended(backend.runs, run.thread_id, run.run_id, rest, roll_back=roll_back):
        return False
    publish_end(backend, run.run_id, RunStatus.CANCELLED)
    start_next_enqueued(backend, run.thread_id)
    return True


def start_next_enqueued(backend: Backend, thread_id: str, queued: Optional[list[Run]] = None) -> None:
    """Start the oldest run queued on the free thread; ``queued``: the
    thread's pending runs, when the caller read them already."""
    # Submitted runs (a resume through RemoteGraph too) carry a strategy. A
    # reject-strategy run is never pending without holding its thread.
    if queued is None:
        queued = backend.runs.pending_runs(thread_id)
    queued = [r for r in queued if r.kind == "start" or "multitask_strategy" in r.options]
    if not queued:
        return
    nxt = queued[0]
    if lifecycle.claim(backend.runs, thread_id, nxt.graph, nxt.run_id):
        send_start(backend, nxt.run_id)


def send_start(backend: Backend, run_id: str) -> None:
    # No one reads a start task's result (the run record and its stream
    # are the outcome): ignoring it spares the sender a result-channel
    # subscription and the worker a stored result, per run.
    backend.app.send_task(
        "lgdist.start", kwargs={"v": 1, "run_id": run_id}, queue=backend.settings.default_queue, ignore_result=True
    )


def fail_pending_run(backend: Backend, run: Run, error: str, expect: tuple = (RunStatus.PENDING,)) -> bool:
    """A run that never started (bad graph name, bad input) ends as error;
    its thread keeps whatever it could still resume."""
    rest = resting_status(backend, run.thread_id, run.graph, ThreadStatus.ERROR)
    if not lifecycle.end(backend.runs, run.run_id, RunStatus.ERROR, error=error, expect=expect, thread_status=rest):
        return False
    publish_end(backend, run.run_id, RunStatus.ERROR, error)
    start_next_enqueued(backend, run.thread_id)
    return True


def claim_step(backend: Backend, run: Run, checkpoint_id: str) -> bool:
    """Whether this caller may send the step that starts at ``checkpoint_id``
    for ``run``: true for exactly one caller (an insert-once claim, in the
    broker's Redis: one round trip, no database transaction)."""
    return backend.deliveries.claim(f"{checkpoint_id}.scheduled.{run.run_id}")


def rejected(error: str, **extra: Any) -> dict:
    log.error(error)
    return {"status": "rejected", "error": error, **extra}


# -- lgdist.start ---------------------------------------------------------------------


def start_run(backend: Backend, run_id: str) -> dict:
    """``lgdist.start``: the run's thread is already claimed by the client or
    by a resume; load the thread, apply the input, schedule step one.

    The usual case - a pending run that holds its thread - begins in one
    statement that also reads the run; anything else (a queued run, a
    redelivery, a duplicate) is told apart by :func:`_start_unusual`."""
    run = lifecycle.begin(backend.runs, run_id, backend.hostname)
    if run is None:
        return _start_unusual(backend, run_id)
    try:
        backend.registry.get(run.graph)
    except Exception as exc:  # noqa: BLE001 - a missing or broken graph fails the run
        error = str(exc) if isinstance(exc, GraphNotRegisteredError) else (
            f"graph {run.graph!r} could not be loaded: {type(exc).__name__}: {exc}"
        )  # fmt: skip
        fail_pending_run(backend, run, error, expect=(RunStatus.RUNNING,))
        return {"status": "error", "run_id": run_id, "error": error}
    # A stateless run's thread was created with it: nothing to read there.
    _load_and_schedule(backend, run, new_thread=run.options.get("on_completion") == "delete")
    return {"status": "started", "run_id": run_id}


def _start_unusual(backend: Backend, run_id: str) -> dict:
    """``lgdist.start`` for a run that did not begin at once."""
    run = backend.runs.get_run(run_id)
    if run is None:
        return rejected(f"lgdist.start: there is no run {run_id!r}")
    thread = backend.runs.get_thread(run.thread_id)
    if run.status in lifecycle.ACTIVE and (thread is None or thread["active_run_id"] != run_id):
        # A queued run: start_next_enqueued starts it when the thread is free.
        return rejected(f"lgdist.start: run {run_id} does not hold thread {run.thread_id!r} (it is queued)")
    if run.status == RunStatus.RUNNING:
        # A redelivery: the worker that started the run died. Finish its job.
        return _restart_started_run(backend, run)
    if run.status != RunStatus.PENDING:
        return {"status": "duplicate", "run_id": run_id}
    try:
        backend.registry.get(run.graph)
    except GraphNotRegisteredError as exc:
        fail_pending_run(backend, run, str(exc))
        return {"status": "error", "run_id": run_id, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a broken graph module fails the run
        error = f"graph {run.graph!r} could not be loaded: {type(exc).__name__}: {exc}"
        fail_pending_run(backend, run, error)
        return {"status": "error", "run_id": run_id, "error": error}
    begun = lifecycle.begin(backend.runs, run_id, backend.hostname)
    if begun is None:
        return {"status": "duplicate", "run_id": run_id}
    _load_and_schedule(backend, begun)
    return {"status": "started", "run_id": run_id}


class _PutOnce:
    """A saver whose ``put`` stores under an idempotency key: applying a
    run's state update twice (a redelivered start) stores it once."""

    def __init__(self, saver: BaseCheckpointSaver, key: str) -> None:
        self._saver = saver
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._saver, name)

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any, **kwargs: Any) -> Any:
        stored = self._saver.put(config, checkpoint, metadata, new_versions, **{**kwargs, "idempotency_key": self._key})
        if stored is None:
            raise StepAlreadyFinished(checkpoint["id"])
        return stored


def _resumes(run: Run) -> bool:
    return run.input is None or isinstance(run.input, Command)


def _load_and_schedule(backend: Backend, run: Run, *, new_thread: bool = False) -> None:
    """Load the run's input and start its steps. Under durability "async"
    what the input stores, the run's start and the first slice of steps
    are stored together (see ``slice_store``). ``new_thread``: the thread
    was created with the run and has no checkpoint to read."""
    from lgdist.distributed.single_step import InlineSlice, start_steps

    loop = make_loop(backend, run)
    inline = InlineSlice(backend, backend.settings.default_queue, run, loop, new_thread=new_thread)
    try:
        if run.options.get("as_node") is not None:
            from lgdist.graph.update import apply_update

            saver = _PutOnce(backend.saver, f"update:{run.run_id}")
            apply_update(  # type: ignore[arg-type]
                loop.spec, saver, loop.config, run.options.get("update"), run.options["as_node"], caller_config=loop.config
            )
        # Whatever the input stores (an input, fork or update checkpoint) is
        # stored once per run, however often this runs.
        loop.load(run.input, idempotency_key=f"input:{run.run_id}")
    except StepAlreadyFinished:
        # An earlier delivery loaded the input and died: go on from there.
        _continue_run(backend, run)
        return
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:  # noqa: BLE001 - bad input ends the run, not the worker
        if inline.settle() is None:
            end_run(backend, run, RunStatus.ERROR, f"{type(exc).__name__}: {exc}")
        return
    if run.start_step is None:
        inline.record_start(loop)
    inline.publish(loop, once=f"input:{run.run_id}")
    crash_point("start.loaded", run.thread_id, loop.metadata.get("step", -2))
    start_steps(backend, run, loop, inline, resumed=_resumes(run))


def _restart_started_run(backend: Backend, run: Run) -> dict:
    if run.start_step is None:
        # It died while loading the input, which stores once: load again.
        _load_and_schedule(backend, run)
    else:
        _continue_run(backend, run)
    return {"status": "continued", "run_id": run.run_id}


def _continue_run(backend: Backend, run: Run) -> None:
    """Schedule the step at the thread's latest checkpoint, unless someone
    has (the step marker decides)."""
    loop = latest_loop(backend, run)
    if loop is None:
        end_run(backend, run, RunStatus.ERROR, f"thread {run.thread_id!r} has no checkpoint to continue from")
        return
    if run.start_step is None:
        record_start(backend, run, loop)
    schedule_step(backend, run, loop, resumed=resumed_here(run, loop))


# -- scheduling -------------------------------------------------------------------------


def _drop_plan_time_updates(loop: ThreadLoop) -> None:
    """``finish_step`` streams the updates of every task of a step, in task
    order, once all are saved: also those ``plan()`` streamed already because
    their writes were saved before (a resumed step) or came from the node
    cache. Their plan-time chunks would be duplicates."""
    kept = [
        item
        for item in loop.outbox
        if not (item[0] == "updates" and len(item) == 2 and isinstance(item[1], dict) and "__metadata__" in item[1])
    ]
    loop.outbox.clear()
    loop.outbox.extend(kept)


def schedule_step(
    backend: Backend,
    run: Run,
    loop: ThreadLoop,
    *,
    resumed: bool,
    generation: int = 0,
    force: bool = False,
    inline: Any = None,
    lease_fresh: bool = False,
) -> Optional[Task]:
    """Plan the next step and send it, or end the run: a chord for a wide
    step, one ``run_node`` that also finishes the step for a step with one
    task. Only the first caller for a ``(checkpoint, run)`` sends it, unless
    ``force`` (the sweeper and a finish_step that found tasks without
    writes: their earlier messages were lost).

    With ``inline`` (a one-task step's slice, see ``single_step``), a next
    step of one task that the slice allows is not sent but returned, its
    input read: the caller, which stored this checkpoint, runs it. It takes
    no claim: a redelivery of the caller's message, should the caller die,
    finds the step unclaimed and sends it. ``lease_fresh``: the caller
    touched the thread's lease as it stored this checkpoint."""
    parent_id = loop.checkpoint["id"]
    try:
        # A Command's update with nothing to run makes plan() store a
        # checkpoint: the loop child of this one, like any step's.
        tasks = loop.plan(idempotency_key=step_key(run, parent_id))
    except StepAlreadyFinished:
        _continue_run(backend, backend.runs.get_run(run.run_id) or run)
        return None
    except TRANSIENT_ERRORS:
        raise
    except LgdistError as exc:
        if inline is None or inline.settle() is None:
            publish(backend, run, loop)
            end_run(backend, run, RunStatus.ERROR, f"{type(exc).__name__}: {exc}")
        return None
    except Exception as exc:  # noqa: BLE001
        if inline is None or inline.settle() is None:
            end_run(backend, run, RunStatus.ERROR, "".join(traceback.format_exception(exc)))
        return None
    _drop_plan_time_updates(loop)
    checkpoint_id = loop.checkpoint["id"]
    single = len(loop.tasks) == 1 and len(tasks) == 1
    if loop.status == "pending" and single and inline is not None and inline.allows(loop, tasks[0]):
        inline.publish(loop)
        return tasks[0]
    # The slice ends here: what it kept is stored before a step leaves
    # this worker, or with the run's end (durability "async", see slice_store).
    if loop.status != "pending":
        end_run_for_status(backend, run, loop, inline=inline)
        return None
    if inline is not None and inline.settle() is not None:
        return None
    if not force and not claim_step(backend, run, checkpoint_id):
        log.info("step at %s of run %s was scheduled already", checkpoint_id, run.run_id)
        return None
    publish(backend, run, loop)
    finish = FinishStepMessage(
        run_id=run.run_id, thread_id=run.thread_id, graph=run.graph, checkpoint_id=checkpoint_id, resumed=resumed
    )
    if not tasks:
        # Every task of this step has saved writes already (a resumed or
        # recovered step): finish it right here.
        finish_step(backend, finish)
        return None
    suffix = f".{generation}" if generation else ""
    if single:
        if inline is None and not lease_fresh:  # else the caller touched the lease as it stored the checkpoint
            backend.runs.touch_thread(run.thread_id)
        send_single_step(backend, run, checkpoint_id, tasks[0], resumed=resumed, suffix=suffix)
        return None
    if not lease_fresh:
        backend.runs.touch_thread(run.thread_id)
    has_writes = bool(loop.pending_writes) or resumed
    send_wide_step(backend, run, checkpoint_id, tasks, finish, suffix=suffix, step_has_writes=has_writes)
    return None


def send_wide_step(
    backend: Backend,
    run: Run,
    checkpoint_id: str,
    tasks: list[Task],
    finish: FinishStepMessage,
    *,
    suffix: str,
    step_has_writes: bool,
) -> None:
    """Send a wide step: ``chord(group(run_node × tasks), finish_step)``.

    The callback ignores its header's results (it reads the tasks' writes
    from their step's Redis hash), so where the result backend joins a
    chord by itself the header tasks store none (:func:`_header_results`)."""
    ignore = not _header_results(backend)
    header = [
        backend.app.signature(
            "lgdist.run_node",
            kwargs=RunNodeMessage(
                run_id=run.run_id,
                thread_id=run.thread_id,
                graph=run.graph,
                checkpoint_id=checkpoint_id,
                task_id=task.id,
                node=task.name,
                step_has_writes=step_has_writes,
            ).model_dump(),
            immutable=True,
        ).set(
            queue=backend.settings.queue_for(task.name),
            task_id=f"{checkpoint_id}.{task.id}{suffix}",
            shadow=f"lgdist.run_node[{task.name}]",
            ignore_result=ignore,
        )
        for task in tasks
    ]
    body = backend.app.signature("lgdist.finish_step", kwargs=finish.model_dump(), immutable=True).set(
        queue=backend.settings.default_queue,
        task_id=f"{checkpoint_id}.finish{suffix}",
    )
    chord(header)(body)


def _header_results(backend: Backend) -> bool:
    """Whether a chord's header tasks must store their results. Celery's
    Redis result backend counts a chord's parts and keeps their results
    for the callback itself (``on_chord_part_return``, called whether or
    not the task stores its result): a stored result there is one more
    round trip per task (``SETEX`` + ``PUBLISH``) that no one reads. Other
    backends join a chord by polling the stored results (``chord_unlock``)."""
    from celery.backends.redis import RedisBackend

    return not isinstance(backend.app.backend, RedisBackend)


def send_single_step(backend: Backend, run: Run, checkpoint_id: str, task: Task, *, resumed: bool, suffix: str) -> None:
    """Send a one-task step: its ``run_node`` also finishes the step."""
    message = RunNodeMessage(
        run_id=run.run_id,
        thread_id=run.thread_id,
        graph=run.graph,
        checkpoint_id=checkpoint_id,
        task_id=task.id,
        node=task.name,
        finish=True,
        resumed=resumed,
    )
    backend.app.send_task(
        "lgdist.run_node",
        kwargs=message.model_dump(),
        queue=backend.settings.queue_for(task.name),
        task_id=f"{checkpoint_id}.{task.id}{suffix}",
        shadow=f"lgdist.run_node[{task.name}]",
    )


def end_run_for_status(backend: Backend, run: Run, loop: ThreadLoop, inline: Any = None) -> bool:
    if loop.status == "done" or (loop.status == "interrupt_after" and not _has_next_step(loop)):
        # A breakpoint after the graph's last step leaves nothing to resume:
        # the thread is idle, as LangGraph's server reports it.
        return end_run(backend, run, RunStatus.SUCCESS, loop=loop, inline=inline)
    if loop.status in ("interrupted", "interrupt_before", "interrupt_after"):
        return end_run(backend, run, RunStatus.INTERRUPTED, loop=loop, inline=inline)
    raise ValueError(f"unexpected loop status {loop.status!r}")


def _has_next_step(loop: ThreadLoop) -> bool:
    return bool(plan_next_step(loop.spec, loop.checkpoint, loop.channels, loop.step, checkpoint_ns=loop.checkpoint_ns, read_inputs=False))


# -- lgdist.finish_step -------------------------------------------------------------------


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

    run, saved, _ = read_step(backend, msg.run_id, msg.checkpoint_id, with_writes=True)
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
    elif kept:
        backend.step_writes.drop(run.run_id, msg.checkpoint_id)  # type: ignore[union-attr]
    crash_point("finish_step.stored", run.thread_id, loop.metadata["step"])
    if loop.status != "pending":
        end_run_for_status(backend, run, loop)
        return {"status": "ok", "outcome": "stored"}
    publish(backend, run, loop, once=key)
    after = _go_on(backend, run, loop, worker or backend.hostname)
    return {"status": "ok", "outcome": "stored", **({"next": after} if after else {})}


def _go_on(backend: Backend, run: Run, loop: ThreadLoop, worker: str) -> Optional[dict]:
    """The callback stored its step: send the next one, or, when it has one
    task on the callback's queue, run it here, as a one-task step runs the
    next one (a slice of ``inline_steps`` / ``inline_ms``, see
    ``single_step``) — no message, no read of the state just stored. The
    outcome of the steps run here, if any.

    The step run here takes no claim: should this callback die, its
    redelivery (``again``) finds its step stored and goes on from the
    thread's latest checkpoint, whose step no one claimed — the one run
    here if it did not store it, else the one after it. A duplicate that
    runs while this callback is alive (not a redelivery) goes on only from
    this step's own checkpoint, through its claim: at worst it sends the
    step this callback is running, whose node then runs twice and whose
    checkpoint is stored once, as for any duplicated message."""
    from lgdist.distributed.nodes import execute_task
    from lgdist.distributed.single_step import InlineSlice, finish_single_step

    inline = InlineSlice(backend, backend.settings.default_queue, run, loop)
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


# -- when a task fails for good --------------------------------------------------------------


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


def is_current_step(backend: Backend, run: Run, checkpoint_id: str, task_id: Optional[str] = None) -> bool:
    """Whether ``checkpoint_id`` is still the thread's latest checkpoint (its
    step not stored yet) and, given ``task_id``, that task has no saved
    writes: only then may an outcome for it change the run."""
    from lgdist.engine.outcomes import completed_tasks

    latest = backend.saver.get_tuple({"configurable": {"thread_id": run.thread_id, "checkpoint_ns": ""}})
    if latest is None or latest.config["configurable"]["checkpoint_id"] != checkpoint_id:
        return False
    if task_id is None:
        return True
    if task_id in completed_tasks(latest.pending_writes or []):
        return False
    # A wide step's task that completed keeps its writes in Redis until the step ends.
    return backend.step_writes is None or not backend.step_writes.has(run.run_id, checkpoint_id, task_id)


# -- the sweeper -----------------------------------------------------------------------------


def sweep(backend: Backend, older_than: Optional[float] = None) -> list[str]:
    """See :func:`lgdist.distributed.sweeper.sweep`."""
    from lgdist.distributed.sweeper import sweep as sweep_stalled

    return sweep_stalled(backend, older_than)
