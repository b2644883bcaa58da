"""The sweeper (``lgdist.sweep``, sent by ``lgdist beat``): repairs threads
whose run stopped making progress.

A step stalls when its messages are lost - a worker SIGKILLed with its pool
(Redis redelivers its unacknowledged message only after the visibility
timeout, an hour), a broker restarted without persistence. Running nodes
keep their thread's lease fresh (a heartbeat), so a thread untouched for
``stall_seconds`` has nothing alive working on it.
"""

from __future__ import annotations

import logging
import time
from typing import Optional

from lgdist.distributed.backend import Backend
from lgdist.distributed.coordinator import THREAD_STATUS, latest_loop, resumed_here, schedule_step, send_start
from lgdist.distributed.runs import FINAL

log = logging.getLogger("lgdist.sweeper")

# A counter row in the run store (``count_delivery``): how many stalled steps
# the sweeper rescheduled, for the API's ``/metrics``.
RESCHEDULES_KEY = "metrics:sweeper:reschedules"


def sweep(backend: Backend, older_than: Optional[float] = None) -> list[str]:
    """Repair threads whose run made no progress for ``older_than`` seconds:
    reschedule a running step whose messages were lost (a worker killed with
    its pool, a broker restart) - only tasks without saved writes run again;
    send ``lgdist.start`` again for a run that never started; free a thread
    still held by a run that has ended. Returns the threads it touched."""
    older_than = backend.settings.stall_seconds if older_than is None else older_than
    touched = []
    for thread in backend.runs.stalled_threads(older_than):
        run = backend.runs.get_run(thread["active_run_id"] or "")
        if run is None or run.status in FINAL:
            status = THREAD_STATUS.get(run.status, "error") if run is not None else "error"
            if backend.runs.release_thread(thread["thread_id"], thread["active_run_id"], status):
                log.warning("sweep: freed thread %s held by ended run %s", thread["thread_id"], thread["active_run_id"])
                touched.append(thread["thread_id"])
            continue
        backend.runs.touch_thread(run.thread_id)
        if run.status == "pending" or run.start_step is None:
            log.warning("sweep: run %s on thread %s never got going; starting it again", run.run_id, run.thread_id)
            send_start(backend, run.run_id)
        else:
            loop = latest_loop(backend, run)
            if loop is None:
                continue
            log.warning("sweep: rescheduling the stalled step at %s of run %s", loop.checkpoint["id"], run.run_id)
            resumed = resumed_here(run, loop)
            schedule_step(backend, run, loop, resumed=resumed, generation=int(time.time()), force=True)
            backend.runs.count_delivery(RESCHEDULES_KEY)
        touched.append(run.thread_id)
    return touched
