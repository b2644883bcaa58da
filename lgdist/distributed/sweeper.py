"""The sweeper (``lgdist.sweep``, sent by ``lgdist beat``): repairs threads
whose run stopped making progress.

A step stalls when its messages are lost - a worker SIGKILLed with its pool
(Redis redelivers its unacknowledged message only after the visibility
timeout, an hour), a broker restarted without persistence. Running nodes
keep their thread's lease fresh (a heartbeat), and a step waiting in a queue
behind other work is not stalled: the broker still holds its messages (and a
node that a worker took less than a stall period ago runs). So a run is
repaired only when its thread's lease is older than ``stall_seconds`` and no
message of the run waits in lgdist's queues or was taken that recently; taking the repair moves
the lease forward in the same statement, so two sweeps never repair the same
step and a step is re-sent at most once per stall period.

A worker takes a message in two steps (kombu's Redis transport pops it from
its queue, then records it as unacknowledged), so for a moment - longer on a
loaded machine - the message is in neither place and its run looks stalled.
A run that looks stalled is looked for again on a second read of the
backlog, ``TRANSIT_SECONDS`` later, before it is repaired.
"""

from __future__ import annotations

import logging
import time
from typing import Optional

from lgdist.distributed import lifecycle
from lgdist.distributed.backend import Backend
from lgdist.distributed.coordinator import latest_loop, resumed_here, schedule_step
from lgdist.distributed.run_end import send_start, settle_cancelled
from lgdist.distributed.lifecycle import RunStatus, ThreadStatus
from lgdist.distributed.queues import Backlog, read_backlog
from lgdist.distributed.runs import Run
from lgdist.distributed.step_writes import store_kept_writes

log = logging.getLogger("lgdist.sweeper")

# A counter row in the run store (``count_delivery``): how many stalled steps
# the sweeper rescheduled, for the API's ``/metrics``.
RESCHEDULES_KEY = "metrics:sweeper:reschedules"
# How long after a first read of the backlog a stalled-looking run is looked
# for again (at most a quarter of the stall period, which keeps the message a
# worker took meanwhile "fresh" on the second read).
TRANSIT_SECONDS = 0.5


def sweep(backend: Backend, older_than: Optional[float] = None) -> list[str]:
    """Repair threads whose run made no progress for ``older_than`` seconds:
    reschedule a running step whose messages were lost - only tasks without
    saved writes (or writes kept in Redis, stored first) run again; send ``lgdist.start`` again for a run that never
    started; free a thread still held by a run that has ended. Returns the
    threads it touched."""
    older_than = backend.settings.stall_seconds if older_than is None else older_than
    backend.runs.expire_deliveries()
    touched = []
    backlog: Optional[Backlog] = None
    suspects: list[tuple[str, Run]] = []
    for thread in backend.runs.stalled_threads(older_than):
        thread_id, run_id = thread["thread_id"], thread["active_run_id"] or ""
        run = backend.runs.get_run(run_id)
        if run is None or run.status in lifecycle.FINAL:
            if _free(backend, thread_id, run_id, run):
                log.warning("sweep: freed thread %s held by ended run %s", thread_id, run_id)
                touched.append(thread_id)
            continue
        if backlog is None:
            backlog = read_backlog(backend.app, backend.settings.queue_names(), fresh_seconds=older_than)
        if not backlog.holds(run.run_id):
            suspects.append((thread_id, run))
    if suspects:
        # A message a worker was taking during the first read is recorded
        # as taken (fresh) by now.
        time.sleep(min(TRANSIT_SECONDS, older_than / 4))
        backlog = read_backlog(backend.app, backend.settings.queue_names(), fresh_seconds=older_than)
    for thread_id, run in suspects:
        if backlog is not None and backlog.holds(run.run_id):
            continue  # queued behind other work, or taken: not stalled
        if _repair(backend, thread_id, run, older_than):
            touched.append(thread_id)
    return touched


def _repair(backend: Backend, thread_id: str, run: Run, older_than: float) -> bool:
    """Send a stalled run's start or step again, unless another sweep took
    it or it moved meanwhile."""
    if not lifecycle.claim_stall(backend.runs, thread_id, run.run_id, older_than):
        return False
    if run.status == RunStatus.PENDING or run.start_step is None:
        log.warning("sweep: run %s on thread %s never got going; starting it again", run.run_id, thread_id)
        send_start(backend, run.run_id)
        return True
    loop = latest_loop(backend, run)
    if loop is None:
        return False
    if store_kept_writes(backend, run, loop.checkpoint["id"]):
        # Tasks of the step that finished kept their writes in
        # Redis: stored now, they do not run again.
        loop = latest_loop(backend, run)
        if loop is None:
            return False
    log.warning("sweep: rescheduling the stalled step at %s of run %s", loop.checkpoint["id"], run.run_id)
    resumed = resumed_here(run, loop)
    schedule_step(backend, run, loop, resumed=resumed, generation=int(time.time()), force=True)
    backend.runs.count_delivery(RESCHEDULES_KEY)
    return True


def _free(backend: Backend, thread_id: str, run_id: str, run: Optional[Run]) -> bool:
    if run is not None and run.status == RunStatus.CANCELLED:
        return settle_cancelled(backend, run)
    status = lifecycle.THREAD_AFTER[run.status] if run is not None else ThreadStatus.ERROR
    return lifecycle.release_ended(backend.runs, thread_id, run_id, status)
