"""The coordinator: turns each superstep of a thread into a Celery chord.

    start/resume ──► schedule_step ──► chord(group(run_node × tasks), finish_step)
                          ▲                                           │
                          └──────────── next step ◄───────────────────┘
                                (a one-task next step runs in finish_step)

This module plans and sends steps (``schedule_step``) and holds what the
step path shares; ``run_start`` is ``lgdist.start``, ``step_finish`` the
chord callback and a task's final failure, ``run_end`` how a run ends and
hands its thread on, ``single_step`` a one-task step and its inline slice.

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
import traceback
from typing import Any, Optional

from celery import chord
from celery.utils import uuid

from lgdist.distributed import lifecycle
from lgdist.distributed.backend import Backend
from lgdist.distributed.lifecycle import RunStatus
from lgdist.distributed.messages import FinishStepMessage, RunNodeMessage
from lgdist.distributed.run_end import end_run, publish
from lgdist.distributed.runs import Run
from lgdist.distributed.step_reads import remember_sent_step
from lgdist.distributed.transient import TRANSIENT_ERRORS
from lgdist.engine import mark_resumed, plan_next_step
from lgdist.engine.tasks import Task
from lgdist.errors import LgdistError
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
    resumed = resumes(run) and run.start_step is not None and loop.step == run.start_step
    if resumed:
        mark_resumed(loop.checkpoint)
    return resumed


def claim_step(backend: Backend, run: Run, checkpoint_id: str) -> bool:
    """Whether this caller may send the step that starts at ``checkpoint_id``
    for ``run``: true for exactly one caller (an insert-once claim, in the
    broker's Redis: one round trip, no database transaction)."""
    return backend.deliveries.claim(f"{checkpoint_id}.scheduled.{run.run_id}")


def rejected(error: str, **extra: Any) -> dict:
    log.error(error)
    return {"status": "rejected", "error": error, **extra}


def resumes(run: Run) -> bool:
    return run.input is None or isinstance(run.input, Command)


def continue_run(backend: Backend, run: Run) -> None:
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
        continue_run(backend, backend.runs.get_run(run.run_id) or run)
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
        from lgdist.distributed.step_finish import finish_step

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
    remember_sent_step(run, loop, has_writes=has_writes, saver=backend.saver)  # this process's tasks of it read nothing
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
    chord by itself (Redis) the header tasks store none and the chord is
    sent as :func:`_send_chord` does; other backends join a chord by
    polling its stored results (``chord_unlock``): Celery's ``chord``."""
    body = backend.app.signature("lgdist.finish_step", kwargs=finish.model_dump(), immutable=True).set(
        queue=backend.settings.default_queue,
        task_id=f"{checkpoint_id}.finish{suffix}",
    )
    header = [
        (
            RunNodeMessage(
                run_id=run.run_id,
                thread_id=run.thread_id,
                graph=run.graph,
                checkpoint_id=checkpoint_id,
                task_id=task.id,
                node=task.name,
                step_has_writes=step_has_writes,
            ).model_dump(),
            {
                "queue": backend.settings.queue_for(task.name),
                "task_id": f"{checkpoint_id}.{task.id}{suffix}",
                "shadow": f"lgdist.run_node[{task.name}]",
            },
        )
        for task in tasks
    ]
    if _joins_chords_itself(backend):
        _send_chord(backend, header, body)
    else:
        chord(
            [backend.app.signature("lgdist.run_node", kwargs=kwargs, immutable=True).set(**options)
             for kwargs, options in header]
        )(body)  # fmt: skip


def _joins_chords_itself(backend: Backend) -> bool:
    """Whether the result backend counts a chord's parts and sends its
    callback itself (Celery's Redis backend, ``on_chord_part_return``,
    called whether or not a task stores its result), so the header tasks
    need store no result. Other backends join a chord by polling the
    stored results of its header (``chord_unlock``)."""
    from celery.backends.redis import RedisBackend

    return isinstance(backend.app.backend, RedisBackend)


def _send_chord(backend: Backend, header: list[tuple[dict, dict]], body: Any) -> None:
    """What ``chord(header)(body)`` sends on Celery's Redis result backend,
    without what lgdist does not use: the same messages (each header task
    names its group, its index and the callback, as a chord's do, so the
    backend's part counting sends the callback and Flower shows the
    group), minus a subscription per header task to results no one reads
    (the group's barrier) and minus Celery's ``saferepr`` of each
    message's arguments (``repr``, a C function, says the same)."""
    app = backend.app
    group_id = uuid()
    body.freeze(group_id=group_id, root_id=_root_id(app))
    # The part counter exists before any part can return.
    app.backend.set_chord_size(group_id, len(header))
    with app.producer_or_acquire() as producer:
        for index, (kwargs, options) in enumerate(header):
            app.send_task(
                "lgdist.run_node",
                kwargs=kwargs,
                producer=producer,
                group_id=group_id,
                group_index=index,
                chord=body,
                ignore_result=True,
                add_to_parent=False,
                argsrepr="()",
                kwargsrepr=repr(kwargs),
                **options,
            )


def _root_id(app: Any) -> Optional[str]:
    """The workflow root Celery gives messages sent from a task: the
    sending task's root (or the task itself)."""
    parent = app.current_worker_task
    return (parent.request.root_id or parent.request.id) if parent else None


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
    kwargs = message.model_dump()
    # No one reads a step's Celery result: its outcome is the thread's
    # checkpoint (and Flower shows it from the task's events).
    backend.app.send_task(
        "lgdist.run_node",
        kwargs=kwargs,
        queue=backend.settings.queue_for(task.name),
        task_id=f"{checkpoint_id}.{task.id}{suffix}",
        shadow=f"lgdist.run_node[{task.name}]",
        ignore_result=True,
        argsrepr="()",
        kwargsrepr=repr(kwargs),
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
