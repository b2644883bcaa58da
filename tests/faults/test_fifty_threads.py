"""Load plus a fault: 50 threads running at once on 3 workers while one
worker is SIGKILLed (main process and pool) and restarted. Every run
finishes and every thread is the fault-free one."""

from __future__ import annotations

import os
import signal
import time

import pytest
from faultlib import fault_free_history, record, step_accounting

from lgdist.distributed.check import check_thread

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(180)]

THREADS = 50
TICKS = {"until": 6}


@pytest.mark.fault("fifty-threads")
def test_fifty_threads_survive_a_worker_killed_and_restarted(faults, replace_worker):
    client = faults.client
    threads = [faults.thread_id(f"fifty{i:02d}") for i in range(THREADS)]
    runs = {client.submit("ticker", TICKS, t): t for t in threads}

    # Kill a worker once the cluster is busy with every thread.
    faults.wait_for(lambda: all(faults.checkpoint_count(t) >= 2 for t in threads), timeout=60, what="all threads started")
    victim = faults.workers[0]
    killed = time.monotonic()
    os.killpg(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait(timeout=10)
    replace_worker(victim)

    deadline = time.monotonic() + 90
    statuses = {}
    for run_id in runs:
        statuses[run_id] = client.wait(run_id, timeout=max(1.0, deadline - time.monotonic()))["status"]
    recovered = time.monotonic() - killed
    assert set(statuses.values()) == {"success"}, statuses

    expected = fault_free_history("ticker", [TICKS])
    lost = duplicated = 0
    for thread_id in threads:
        assert check_thread(client.backend, thread_id) == [], thread_id
        actual = faults.history_keys("ticker", thread_id)
        assert actual == expected, thread_id
        thread_lost, thread_duplicated = step_accounting(actual, expected)
        lost += thread_lost
        duplicated += thread_duplicated
    # Only a step the killed worker held (-c 1, prefetch 1: at most one) needed the sweeper.
    swept = [run_id for run_id in runs if faults.swept(run_id)]
    assert len(swept) <= 1, swept
    record("fifty-threads", runs=THREADS, lost=lost, duplicated=duplicated, recover=recovered,
           by=f"sweeper for the {len(swept)} step the killed worker held; the rest unaffected")  # fmt: skip
