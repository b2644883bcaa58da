"""A worker frozen mid-node (SIGSTOP; a C call holding the GIL looks the
same) past the stall time: the sweeper re-runs the step elsewhere and the
run moves on. When the frozen worker thaws, its task is far past its time
limit; that outcome belongs to a step the thread has left and must change
nothing - before, it ended the healthy run as an error."""

from __future__ import annotations

import os
import signal
import time

import pytest
from faultlib import parent_pid, record

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(180)]

UNTIL = 40  # ticks after the frozen one keep the run going long after the re-run


@pytest.mark.fault("worker-frozen")
def test_a_thawed_worker_past_its_time_limit_does_not_end_the_moved_on_run(faults):
    pause_file = faults.tmp / "pausing-node.pid"
    pause_file.unlink(missing_ok=True)
    thread_id = faults.thread_id("frozen")
    run_id = faults.client.submit("pausing", {"n": 0, "until": UNTIL}, thread_id)
    victim = faults.wait_for(lambda: pause_file.exists() and int(pause_file.read_text() or 0), what="the long tick to start")
    worker = faults.worker_of(victim)
    # Read now: once thawed, the hard time limit may kill the pool child.
    assert parent_pid(victim) == worker.proc.pid
    log_offset = worker.log_size()
    frozen_at = time.monotonic()
    os.killpg(worker.proc.pid, signal.SIGSTOP)  # main process and pool: no timers fire either
    try:
        # The sweeper re-runs the frozen step on another worker; the run goes on.
        faults.wait_for(lambda: faults.checkpoint_count(thread_id) >= 6, timeout=90, what="the run to move past the frozen step")
        recovered = time.monotonic() - frozen_at
        # Past the hard limit (soft limit 3 s + 5 s) before the thaw.
        faults.wait_for(lambda: time.monotonic() - frozen_at > 9, timeout=30, what="the hard time limit to pass")
        assert faults.client.get_run(run_id)["status"] == "running", "the run ended before the thaw: nothing is tested"
    finally:
        os.killpg(worker.proc.pid, signal.SIGCONT)
    # The thawed task reaches its time limit now (soft, then hard).
    faults.wait_for(lambda: "time limit" in worker.log_since(log_offset).lower(), timeout=60, what="the thawed task's time limit")
    run = faults.wait_run(run_id, timeout=120)
    assert run["status"] == "success" and run["error"] is None, run
    state = faults.client.get_state("pausing", thread_id)
    assert state.values["n"] == UNTIL and state.values["trail"] == list(range(UNTIL))
    faults.assert_thread_sound(thread_id)
    record("worker-frozen", runs=1, recover=recovered, by="sweeper; the thawed task's outcome ignored")
