"""The coordinator: turns each superstep of a thread into a Celery chord.

    start/resume ──► schedule_step ──► chord(group(run_node × tasks), finish_step)
                          ▲                                           │
                          └──────────── next step ◄───────────────────┘

Every function here tolerates being run twice for the same step (duplicated
or redelivered messages): node writes are keyed by ``(checkpoint, task)``,
and the next checkpoint's insert carries the key ``step:<parent id>``, so a
second ``finish_step`` stores nothing and schedules nothing.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, Optional

from celery import chord

from lgdist.distributed.backend import Backend
from lgdist.distributed.messages import FinishStepMessage, RunNodeMessage
from lgdist.distributed.runs import Run
from lgdist.engine import mark_resumed
from lgdist.engine.plan import plan_next_step
from lgdist.errors import GraphNotRegisteredError, LgdistError
from lgdist.local.loop import DEFAULT_RECURSION_LIMIT, StepAlreadyFinished, ThreadLoop
from lgdist.types import Command

log = logging.getLogger("lgdist.coordinator")

# The thread status a run leaves behind when it ends.
_THREAD_STATUS = {"success": "idle", "interrupted": "interrupted", "error": "error", "cancelled": "idle"}

# Stream modes that only the process running a node can produce.
NODE_MODES = ("custom", "messages")
WORKER_MODE = "lgdist:worker"


def make_loop(backend: Backend, run: Run, checkpoint_id: Optional[str] = None) -> ThreadLoop:
    graph = backend.registry.get(run.graph)
    configurable: dict = {"thread_id": run.thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    options = run.options
    config = {
        "configurable": {**(options.get("configurable") or {}), **configurable},
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
    )


def publish(backend: Backend, run: Run, loop: ThreadLoop) -> None:
    events = list(loop.outbox)
    loop.outbox.clear()
    backend.bus.publish(run.run_id, events)


def end_run(
    backend: Backend, run: Run, status: str, error: Optional[str] = None, loop: Optional[ThreadLoop] = None
) -> bool:
    """Move a running run to its final status, release its thread, tell the
    stream readers, and start the thread's next enqueued run. Only the first
    caller for a run does anything; it also publishes ``loop``'s last events
    (an interrupt's chunks), which must reach the stream before its end
    event: readers stop there."""
    values: dict = {"status": status}
    if error is not None:
        values["error"] = error
    if not backend.runs.set_run(run.run_id, expect=("running",), **values):
        return False
    if loop is not None:
        publish(backend, run, loop)
    backend.runs.release_thread(run.thread_id, run.run_id, _THREAD_STATUS[status])
    current = backend.runs.get_run(run.run_id)
    backend.bus.end(run.run_id, status, current.error if current else error)
    start_next_enqueued(backend, run.thread_id)
    return True


def start_next_enqueued(backend: Backend, thread_id: str) -> None:
    # A pending run submitted with "reject" is a submission in flight (its
    # row exists, its own claim comes next): it is not queued, and claiming
    # the thread for it here would make that claim fail.
    queued = [
        r for r in backend.runs.pending_runs(thread_id)
        if r.kind == "start" and r.options.get("multitask_strategy") != "reject"
    ]  # fmt: skip
    if not queued:
        return
    nxt = queued[0]
    if backend.runs.claim_thread(thread_id, nxt.graph, nxt.run_id, ("idle", "interrupted", "error")):
        backend.app.send_task("lgdist.start", kwargs={"v": 1, "run_id": nxt.run_id}, queue=backend.settings.default_queue)


def fail_pending_run(backend: Backend, run: Run, error: str) -> None:
    """A run that never started (bad graph name, bad input) ends as error."""
    backend.runs.set_run(run.run_id, status="error", error=error)
    backend.runs.release_thread(run.thread_id, run.run_id, "error" if backend.runs.get_thread(run.thread_id) else "idle")
    backend.bus.end(run.run_id, "error", error)


def start_run(backend: Backend, run_id: str) -> None:
    """``lgdist.start``: the run's thread is already claimed by the client or
    by a resume; load the thread, apply the input, schedule step one."""
    run = backend.runs.get_run(run_id)
    if run is None:
        log.error("lgdist.start: unknown run %s", run_id)
        return
    if run.status != "pending":
        return  # a duplicate delivery; the first one is handling it
    try:
        backend.registry.get(run.graph)
    except GraphNotRegisteredError as exc:
        fail_pending_run(backend, run, str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - a broken graph module fails the run
        fail_pending_run(backend, run, f"graph {run.graph!r} could not be loaded: {type(exc).__name__}: {exc}")
        return
    if not backend.runs.set_run(run_id, expect=("pending",), status="running", worker=backend.hostname):
        return
    run.status = "running"
    try:
        loop = make_loop(backend, run)
        if run.options.get("as_node") is not None:
            from lgdist.graph.compiled import apply_update

            apply_update(loop.spec, backend.saver, loop.config, run.options.get("update"), run.options["as_node"])
        loop.load(run.input)
    except Exception as exc:  # noqa: BLE001 - bad input ends the run, not the worker
        end_run(backend, run, "error", f"{type(exc).__name__}: {exc}")
        return
    backend.runs.set_run(run_id, start_step=loop.step)
    publish(backend, run, loop)
    resumed = run.input is None or isinstance(run.input, Command)
    schedule_step(backend, run, loop, resumed=resumed)


def schedule_step(backend: Backend, run: Run, loop: ThreadLoop, *, resumed: bool, generation: int = 0) -> None:
    """Plan the next step and send its chord, or end the run."""
    try:
        tasks = loop.plan()
    except LgdistError as exc:
        publish(backend, run, loop)
        end_run(backend, run, "error", f"{type(exc).__name__}: {exc}")
        return
    except Exception as exc:  # noqa: BLE001
        end_run(backend, run, "error", "".join(traceback.format_exception(exc)))
        return
    if loop.status != "pending":
        end_run_for_status(backend, run, loop)
        return
    publish(backend, run, loop)
    checkpoint_id = loop.checkpoint["id"]
    finish = FinishStepMessage(
        run_id=run.run_id, thread_id=run.thread_id, graph=run.graph, checkpoint_id=checkpoint_id, resumed=resumed
    )
    if not tasks:
        # Every task of this step has saved writes already (a resumed or
        # recovered step): finish it right here.
        finish_step(backend, finish)
        return
    suffix = f".{generation}" if generation else ""
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
            ).model_dump(),
            immutable=True,
        ).set(
            queue=backend.settings.queue_for(task.name),
            task_id=f"{checkpoint_id}.{task.id}{suffix}",
            shadow=f"lgdist.run_node[{task.name}]",
        )
        for task in tasks
    ]
    body = backend.app.signature("lgdist.finish_step", kwargs=finish.model_dump(), immutable=True).set(
        queue=backend.settings.default_queue,
        task_id=f"{checkpoint_id}.finish{suffix}",
    )
    backend.runs.touch_thread(run.thread_id)
    chord(header)(body)


def end_run_for_status(backend: Backend, run: Run, loop: ThreadLoop) -> bool:
    if loop.status == "done":
        return end_run(backend, run, "success", loop=loop)
    if loop.status in ("interrupted", "interrupt_before", "interrupt_after"):
        return end_run(backend, run, "interrupted", loop=loop)
    raise ValueError(f"unexpected loop status {loop.status!r}")


def finish_step(backend: Backend, msg: FinishStepMessage) -> None:
    """``lgdist.finish_step``: apply the step's saved writes, store the next
    checkpoint (once), stream the step's events, schedule the next step."""
    run = backend.runs.get_run(msg.run_id)
    if run is None:
        return
    if run.status == "cancelled":
        backend.runs.release_thread(run.thread_id, run.run_id, "idle")
        backend.bus.end(run.run_id, "cancelled")
        return
    if run.status != "running":
        return
    loop = make_loop(backend, run, checkpoint_id=msg.checkpoint_id)
    saved = loop.restore()
    if saved is None:
        end_run(backend, run, "error", f"checkpoint {msg.checkpoint_id} of thread {run.thread_id} is missing")
        return
    if run.start_step is not None:
        loop.stop = run.start_step + loop.recursion_limit + 1
    if msg.resumed:
        mark_resumed(loop.checkpoint)
    missing, failed = loop.collect()
    if failed:
        run = backend.runs.get_run(run.run_id) or run
        task, text = failed[0]
        error = run.error or f"node {task.name!r} failed: {text}"
        end_run(backend, run, "error", error)
        return
    if missing:
        # A node task vanished (should not happen with acks_late): run the
        # step again; tasks with saved writes are not re-run.
        log.warning("finish_step: %d task(s) of %s without writes; rescheduling", len(missing), msg.checkpoint_id)
        restored = make_loop(backend, run, checkpoint_id=msg.checkpoint_id)
        restored.restore()
        schedule_step(backend, run, restored, resumed=msg.resumed, generation=1)
        return
    loop.step_key = f"step:{msg.checkpoint_id}"
    try:
        loop.finish()
    except StepAlreadyFinished:
        return
    if loop.status != "pending":
        end_run_for_status(backend, run, loop)
        return
    publish(backend, run, loop)
    schedule_step(backend, run, loop, resumed=False)


def run_node(backend: Backend, msg: RunNodeMessage, worker: Optional[str] = None) -> dict:
    """``lgdist.run_node``: run one task and save its writes. Never raises for
    a node's own failure: the error is saved as the task's outcome so the
    chord completes and ``finish_step`` ends the run with it."""
    from lgdist.engine.execute import make_fresh_reader, run_task
    from lgdist.errors import GraphInterrupt
    from lgdist.local.runner import _after_task, _callbacks, _prepare

    import os

    worker = f"{worker or backend.hostname} (pid {os.getpid()})"
    result = {"node": msg.node, "worker": worker, "status": "ok"}
    run = backend.runs.get_run(msg.run_id)
    if run is None or run.status != "running":
        return {**result, "status": "skipped"}
    deliveries = backend.runs.count_delivery(f"{msg.checkpoint_id}.{msg.task_id}")
    loop = make_loop(backend, run, checkpoint_id=msg.checkpoint_id)
    saved = loop.restore()
    if saved is None or loop.checkpoint["id"] != msg.checkpoint_id:
        return {**result, "status": "error", "error": f"checkpoint {msg.checkpoint_id} not found"}
    task = plan_next_step(loop.spec, loop.checkpoint, loop.channels, loop.step).get(msg.task_id)
    if task is None:
        return {**result, "status": "error", "error": f"task {msg.task_id} is not part of step {msg.checkpoint_id}"}
    done = [c for t, c, _ in loop.pending_writes if t == task.id and c not in ("__error__", "__interrupt__", "__resume__")]
    if done:
        return {**result, "status": "done-before"}
    if deliveries > backend.settings.max_deliveries:
        error = (
            f"node {task.name!r} was delivered {deliveries} times without finishing "
            "(its worker died each time); parked as a poison task"
        )
        backend.runs.set_run(run.run_id, error=error)
        loop.record(task, RuntimeError(error))
        return {**result, "status": "error", "error": error}
    backend.runs.touch_thread(run.thread_id)
    callbacks, handler = _callbacks(loop)
    config, ctx = _prepare(loop, task, callbacks, None, None)
    if "custom" in loop.modes:
        ctx.stream_writer = lambda chunk: backend.bus.publish(run.run_id, [("custom", chunk)])
        if ctx.runtime is not None:
            ctx.runtime.stream_writer = ctx.stream_writer
    try:
        run_task(task, config, ctx, make_fresh_reader(loop.channels))
    except GraphInterrupt:
        loop.record(task)
        result["status"] = "interrupted"
    except BaseException as exc:  # noqa: BLE001 - the node's failure is the task's outcome
        text = "".join(traceback.format_exception(exc))
        backend.runs.set_run(run.run_id, error=f"node {task.name!r} failed:\n{text}")
        loop.record(task, exc)
        result.update(status="error", error=f"{type(exc).__name__}: {exc}")
    else:
        # The local runner's rule, so that e.g. __start__ streams no messages.
        _after_task(loop, task, handler, config)
        loop.record(task)
    node_events = [(m, c) for m, c in loop.outbox if m in NODE_MODES]
    node_events.append((WORKER_MODE, {"node": task.name, "task_id": task.id, "worker": worker, "status": result["status"]}))
    backend.bus.publish(run.run_id, node_events)
    return result


def sweep(backend: Backend, older_than: Optional[float] = None) -> list[str]:
    """Reschedule the current step of threads whose run made no progress for
    ``older_than`` seconds (a lost message, a worker killed mid-step). Only
    tasks without saved writes run again."""
    import time

    older_than = backend.settings.stall_seconds if older_than is None else older_than
    rescheduled = []
    for thread in backend.runs.stalled_threads(older_than):
        run = backend.runs.get_run(thread["active_run_id"] or "")
        if run is None or run.status != "running":
            continue
        loop = make_loop(backend, run)
        if loop.restore() is None:
            continue
        if run.start_step is not None:
            loop.stop = run.start_step + loop.recursion_limit + 1
        backend.runs.touch_thread(run.thread_id)
        schedule_step(backend, run, loop, resumed=False, generation=int(time.time()))
        rescheduled.append(run.thread_id)
    return rescheduled
