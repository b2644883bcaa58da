"""How a run ends and hands its thread on.

A run ends once: ``end_run`` moves it to its final status and releases (or,
for a stateless run, deletes) its thread in one transaction, then tells the
stream readers and starts the thread's next enqueued run. A cancelled run is
settled (``settle_cancelled``) when its step has stopped; a run that never
started fails with ``fail_pending_run``. Stream events are best effort: the
checkpoint store and the run record are the truth.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

from lgdist.distributed import lifecycle
from lgdist.distributed.backend import Backend
from lgdist.distributed.events import wire_events
from lgdist.distributed.lifecycle import RunStatus, ThreadStatus
from lgdist.distributed.runs import Run
from lgdist.distributed.transient import TRANSIENT_ERRORS
from lgdist.loop import ThreadLoop

log = logging.getLogger("lgdist.coordinator")


def publish(backend: Backend, run: Run, loop: ThreadLoop, once: Optional[str] = None) -> None:
    """Stream the loop's pending events. Best effort: the stream is a view,
    the checkpoint store is the record, and a reader that misses events
    still ends (it falls back to the run record)."""
    events = list(loop.outbox)
    loop.outbox.clear()
    publish_events(backend, run.run_id, events, once=once)


def publish_events(
    backend: Backend, run_id: str, events: list, once: Optional[str] = None, marks: Sequence[str] = ()
) -> None:
    if not events:
        return
    try:
        backend.bus.publish(run_id, wire_events(events), once=once, marks=marks)
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
