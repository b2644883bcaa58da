"""``lgdist.run_node``: run one task of a step on this worker and save its
outcome, keyed by ``(checkpoint, task)`` so that any number of deliveries
store one. The step's state is read from the checkpoint store; a heartbeat
keeps the thread's lease fresh while the node runs."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any, Optional

from lgdist.distributed.backend import Backend
from lgdist.distributed import lifecycle
from lgdist.distributed.coordinator import NODE_MODES, WORKER_MODE, is_current_step, make_loop, publish_events, rejected
from lgdist.distributed.failure import describe_node_failure
from lgdist.distributed.lifecycle import RunStatus
from lgdist.distributed.messages import RunNodeMessage
from lgdist.graph.node import needs_async_run

log = logging.getLogger("lgdist.nodes")


def run_node(backend: Backend, msg: RunNodeMessage, worker: Optional[str] = None, retries: int = 0) -> dict:
    """``lgdist.run_node``: run one task and save its writes. Never raises for
    a node's own failure: the error is saved as the task's outcome so the
    chord completes and ``finish_step`` ends the run with it."""
    from celery.exceptions import SoftTimeLimitExceeded

    from lgdist.engine.execute import arun_task, make_fresh_reader, run_task
    from lgdist.errors import GraphInterrupt
    from lgdist.loop.task_run import after_task, prepare_task, task_callbacks
    from lgdist.runtime import coerce_context

    worker = f"{worker or backend.hostname} (pid {os.getpid()})"
    result = {"node": msg.node, "worker": worker, "status": "ok"}
    run = backend.runs.get_run(msg.run_id)
    if run is None or run.status != RunStatus.RUNNING:
        return {**result, "status": "skipped"}
    if (run.thread_id, run.graph) != (msg.thread_id, msg.graph):
        return {**result, **rejected(
            f"lgdist.run_node: run {run.run_id} is graph {run.graph!r} on thread {run.thread_id!r}, "
            f"not {msg.graph!r} on {msg.thread_id!r}"
        )}  # fmt: skip
    deliveries = backend.runs.count_delivery(f"{msg.checkpoint_id}.{msg.task_id}")
    loop = make_loop(backend, run, checkpoint_id=msg.checkpoint_id)
    saved = loop.restore()
    if saved is None or loop.checkpoint["id"] != msg.checkpoint_id:
        return {**result, "status": "error", "error": f"checkpoint {msg.checkpoint_id} not found"}
    task = loop.plan_task(msg.task_id)
    if task is None:
        return {**result, "status": "error", "error": f"task {msg.task_id} is not part of step {msg.checkpoint_id}"}
    if loop.outcome(task).completed:
        return {**result, "status": "done-before"}
    # Celery retries after an outage count as deliveries too; they are not
    # a worker dying on this node.
    if deliveries - retries > backend.settings.max_deliveries:
        error = (
            f"node {task.name!r} was delivered {deliveries - retries} times without finishing "
            "(its worker died each time); parked as a poison task"
        )
        lifecycle.note(backend.runs, run.run_id, expect=(RunStatus.RUNNING,), error=error)
        loop.record(task, RuntimeError(error))
        return {**result, "status": "error", "error": error}
    backend.runs.touch_thread(run.thread_id)
    callbacks, handler = task_callbacks(loop)
    context = coerce_context(getattr(backend.registry.get(run.graph), "context_schema", None), run.options.get("context"))
    config, ctx = prepare_task(loop, task, callbacks, context, backend.store)
    if "custom" in loop.modes:
        ctx.stream_writer = lambda chunk: publish_events(backend, run.run_id, [("custom", chunk)])
        if ctx.runtime is not None:
            ctx.runtime = ctx.runtime.override(stream_writer=ctx.stream_writer)
    started_at, clock = time.time(), time.monotonic()
    try:
        with _Heartbeat(backend, run.thread_id):
            if needs_async_run(task.node):
                # A worker has no caller to pick the async API: it picks it
                # for a node with an async-only function or router.
                asyncio.run(arun_task(task, config, ctx, make_fresh_reader(loop.channels)))
            else:
                run_task(task, config, ctx, make_fresh_reader(loop.channels))
    except GraphInterrupt:
        loop.record(task)
        result["status"] = "interrupted"
    except SoftTimeLimitExceeded as exc:
        del exc
        if not is_current_step(backend, run, msg.checkpoint_id, task.id):
            # A copy of this task re-run elsewhere (the sweeper took this
            # one for lost) finished it, or the thread moved on.
            return {**result, "status": "stale"}
        limit = backend.settings.task_time_limit
        text = f"node {task.name!r} timed out: it ran past the task time limit of {limit}s (LGDIST_TASK_TIME_LIMIT)"
        lifecycle.note(backend.runs, run.run_id, expect=(RunStatus.RUNNING,), error=text)
        loop.record(task, TimeoutError(text))
        result.update(status="error", error=text)
    except (SystemExit, KeyboardInterrupt):
        raise  # the worker is stopping this process (e.g. at the hard time limit), not a node failure
    except BaseException as exc:  # noqa: BLE001 - the node's failure is the task's outcome
        lifecycle.note(backend.runs, run.run_id, expect=(RunStatus.RUNNING,), error=describe_node_failure(task.name, exc))
        loop.record(task, exc)
        result.update(status="error", error=f"{type(exc).__name__}: {exc}")
    else:
        # The local runner's rule, so that e.g. __start__ streams no messages.
        after_task(loop, task, handler, config)
        loop.record(task)
    # Node-level modes, and every chunk of a subgraph the node ran (those
    # carry their namespace) when the run streams subgraphs.
    node_events = [item for item in loop.outbox if item[0] in NODE_MODES or len(item) > 2]
    node_events.append((WORKER_MODE, {
        "node": task.name, "task_id": task.id, "worker": worker, "status": result["status"],
        # When and how long the node ran: the API's metrics and thread inspector read these.
        "started_at": started_at, "seconds": time.monotonic() - clock,
    }))  # fmt: skip
    publish_events(backend, run.run_id, node_events)
    return result


class _Heartbeat:
    """Keeps the thread's lease fresh while a node runs: the sweeper takes a
    thread untouched for ``stall_seconds`` for one whose step was lost, and
    must not run a long node a second time while its first run is alive."""

    def __init__(self, backend: Backend, thread_id: str) -> None:
        self.backend = backend
        self.thread_id = thread_id
        self.interval = max(0.5, backend.settings.stall_seconds / 3)
        self.stop = threading.Event()
        self.pulse = threading.Thread(target=self._beat, name=f"lgdist-heartbeat-{thread_id}", daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.backend.runs.touch_thread(self.thread_id)
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried; the node goes on
                log.warning("heartbeat of thread %s: %s", self.thread_id, exc)

    def __enter__(self) -> "_Heartbeat":
        self.pulse.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.pulse.join(timeout=5)
