"""``lgdist.start``: a run begins, its input is loaded once, its first steps run.

The usual case is one statement (a pending run that holds its thread begins);
a redelivery finds the input already stored (its key is per run) and goes on
from the thread's latest checkpoint, a duplicate changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from lgdist.checkpoint.base import BaseCheckpointSaver
from lgdist.distributed import lifecycle
from lgdist.distributed.backend import Backend
from lgdist.distributed.coordinator import (
    continue_run,
    make_loop,
    rejected,
    resumes,
)
from lgdist.distributed.crashpoints import crash_point
from lgdist.distributed.restream import restream
from lgdist.distributed.lifecycle import RunStatus
from lgdist.distributed.run_end import (
    end_run,
    fail_pending_run,
)
from lgdist.distributed.runs import Run
from lgdist.distributed.transient import TRANSIENT_ERRORS
from lgdist.errors import GraphNotRegisteredError
from lgdist.loop import StepAlreadyFinished

log = logging.getLogger("lgdist.coordinator")


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
    # A thread with no checkpoint yet (a new conversation, a stateless
    # run's thread): nothing to read there.
    _load_and_schedule(backend, run, new_thread=run.thread_is_new)
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
        # The run may have ended with the start's slice (durability "async"),
        # stored by a delivery that died before streaming it.
        restream(backend, run, None)
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


def _load_and_schedule(backend: Backend, run: Run, *, new_thread: bool = False, keep: bool = True) -> None:
    """Load the run's input and start its steps. Under durability "async"
    what the input stores, the run's start and the first slice of steps
    are stored together (see ``slice_store``), unless ``keep`` is off.
    ``new_thread``: the thread was created with the run and has no
    checkpoint to read."""
    from lgdist.distributed.single_step import InlineSlice, start_steps

    loop = make_loop(backend, run)
    inline = InlineSlice(backend, backend.settings.default_queue, run, loop, new_thread=new_thread, keep=keep)
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
        continue_run(backend, run)
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
    start_steps(backend, run, loop, inline, resumed=resumes(run))


def _restart_started_run(backend: Backend, run: Run) -> dict:
    if run.start_step is None:
        # It died while loading the input, which stores once, or under
        # durability "async" with its slice still in memory, maybe killed
        # by one of the slice's nodes: load again, and store each step as
        # it finishes. A node that kills every worker running it then
        # meets this start's successor stored past the steps before it,
        # which sends the node a message of its own, whose deliveries are
        # counted (a poison task is parked, not retried for ever).
        _load_and_schedule(backend, run, keep=False)
    else:
        # It died after storing the input (and, under durability "async",
        # a slice of steps): stream what it may not have, then go on.
        restream(backend, run, None)
        continue_run(backend, run)
    return {"status": "continued", "run_id": run.run_id}
