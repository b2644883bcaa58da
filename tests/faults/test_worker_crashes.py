"""Workers die: a pool process SIGKILLed in the middle of a node, a whole
worker (main process and pool) SIGKILLed, a worker that dies inside
``finish_step`` after storing the step's checkpoint, and one that dies in
``lgdist.start`` after storing the input. Every thread ends as the
fault-free run does."""

from __future__ import annotations

import os
import signal
import time

import pytest
from faultlib import SLOW_AT, STEPS, fault_free_values, parent_pid, record

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]

SLOW_INPUT = {"n": 0}


def _start_slow(faults, prefix: str) -> tuple[str, str]:
    faults.pid_file.unlink(missing_ok=True)
    thread_id = faults.thread_id(prefix)
    return thread_id, faults.client.submit("slow", SLOW_INPUT, thread_id)


def _slow_node_pid(faults, other_than: int = 0, timeout: float = 30.0) -> int:
    """The pid of the process sleeping in the slow step (``SLOW_AT``)."""

    def current() -> int:
        text = faults.pid_file.exists() and faults.pid_file.read_text().strip()
        return int(text) if text and int(text) != other_than else 0

    return faults.wait_for(current, timeout=timeout, what="the slow node to (re)start")


@pytest.mark.fault("pool-child-sigkill")
def test_pool_process_killed_mid_node_is_redelivered_and_the_thread_finishes(faults):
    thread_id, run_id = _start_slow(faults, "pool-kill")
    victim = _slow_node_pid(faults)
    assert parent_pid(victim) in faults.worker_pids(), "the node should run in a prefork pool process"

    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    rerun_by = _slow_node_pid(faults, other_than=victim)
    recovered = time.monotonic() - killed

    run = faults.wait_run(run_id, timeout=60)
    assert run["status"] == "success" and run["error"] is None
    assert rerun_by != victim
    lost, duplicated = faults.assert_fault_free("slow", thread_id, [SLOW_INPUT])
    assert "WorkerLostError" in faults.all_logs() or "SIGKILL" in faults.all_logs()
    # task_reject_on_worker_lost requeued it: no sweeper involved.
    assert not faults.swept(run_id)
    record("pool-child-sigkill", runs=1, lost=lost, duplicated=duplicated, recover=recovered,
           by="redelivery (task_reject_on_worker_lost)")  # fmt: skip


@pytest.mark.fault("worker-sigkill")
def test_whole_worker_killed_mid_node_is_recovered_by_the_sweeper(faults, replace_worker):
    """The node's message stays unacknowledged in Redis (redelivered only
    after the 1 h visibility timeout): beat's sweeper finds the stalled step
    and reschedules it; only its unfinished task runs again."""
    thread_id, run_id = _start_slow(faults, "worker-kill")
    victim = _slow_node_pid(faults)
    owner = faults.worker_of(victim)
    checkpoints = faults.checkpoint_count(thread_id)

    killed = time.monotonic()
    os.killpg(owner.proc.pid, signal.SIGKILL)
    owner.proc.wait(timeout=10)
    replace_worker(owner)  # what a process supervisor does
    rerun_by = _slow_node_pid(faults, other_than=victim, timeout=4 * faults.stall_seconds)
    recovered = time.monotonic() - killed

    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    assert rerun_by != victim
    assert faults.checkpoint_count(thread_id) == checkpoints + (STEPS - SLOW_AT)
    lost, duplicated = faults.assert_fault_free("slow", thread_id, [SLOW_INPUT])
    assert faults.swept(run_id)
    record("worker-sigkill", runs=1, lost=lost, duplicated=duplicated, recover=recovered,
           by="sweeper (lgdist beat)")  # fmt: skip


def _values(faults, run_id: str) -> list:
    return [c for m, c in faults.client.events(run_id, timeout=10) if m == "values"]


@pytest.mark.fault("finish-step-crash")
def test_worker_dying_in_finish_step_after_storing_the_checkpoint_continues_without_the_sweeper(faults):
    """The redelivered finish_step finds its checkpoint stored
    (StepAlreadyFinished), schedules the next step itself - guarded by the
    step marker - and streams the step's events it had not streamed.

    Durability "sync": the crash point follows the store of one step's own
    transaction, which only "sync" makes (under "async" the same point
    comes before the slice's store: the slice-crash test; a worker dying
    after a slice's store is the slice-stored-crash test)."""
    thread_id = faults.thread_id("finish-crash")
    value = {"until": 5}
    crash_step = 2  # ticker: -1 input, 0 __start__, 1.. ticks
    faults.arm_crash("finish_step.stored", thread_id, crash_step)
    run_id = faults.client.submit("ticker", value, thread_id, durability="sync")

    faults.wait_for(lambda: not faults.crash_file.exists(), timeout=30, what="the worker to crash in finish_step")
    crashed = time.monotonic()
    # Checkpoints -1 .. crash_step are stored; the next one is progress.
    recovered_at = faults.wait_checkpoints(thread_id, crash_step + 3, timeout=4 * faults.stall_seconds)
    recovered = recovered_at - crashed

    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    lost, duplicated = faults.assert_fault_free("ticker", thread_id, [value])
    assert not faults.swept(run_id), "the sweeper, not the redelivered finish_step, recovered the thread"
    logs = faults.all_logs()
    assert "exited with 'exitcode 70'" in logs or "WorkerLostError" in logs
    parent = next(s for s in faults.history("ticker", thread_id) if s.metadata["step"] == crash_step - 1)
    parent_id = parent.config["configurable"]["checkpoint_id"]
    assert f"'outcome': 'stored before', 'checkpoint_id': '{parent_id}'" in logs
    # The stream has every step's values once, as the fault-free run's.
    assert _values(faults, run_id) == fault_free_values("ticker", value)
    record("finish-step-crash", runs=1, lost=lost, duplicated=duplicated, recover=recovered,
           by="redelivered finish_step schedules the stored step")  # fmt: skip


def test_a_node_task_retried_after_an_outage_past_its_store_goes_on_without_the_sweeper(faults):
    """A one-task step's ``run_node`` stores its checkpoint, then meets an
    outage (a transient error: Celery retries the same message). The
    retry finds the step stored; the attempt before it is over, so the
    retry goes on from the stored step as a redelivery does, rather than
    stopping as a duplicate of a live message would (which left the thread
    to the sweeper).

    Durability "sync", for the same reason as the test above (the outage
    after a slice's store under "async": the slice-stored-crash test)."""
    thread_id = faults.thread_id("outage-retry")
    value = {"until": 5}
    crash_step = 2  # ticker: -1 input, 0 __start__, 1.. ticks
    faults.arm_crash("finish_step.stored", thread_id, crash_step, outage=True)
    run_id = faults.client.submit("ticker", value, thread_id, durability="sync")

    faults.wait_for(lambda: not faults.crash_file.exists(), timeout=30, what="the injected outage")
    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    faults.assert_fault_free("ticker", thread_id, [value])
    assert not faults.swept(run_id), "the sweeper, not the retried run_node, recovered the thread"
    logs = faults.all_logs()
    assert "injected outage at finish_step.stored" in logs
    parent = next(s for s in faults.history("ticker", thread_id) if s.metadata["step"] == crash_step - 1)
    parent_id = parent.config["configurable"]["checkpoint_id"]
    assert f"'outcome': 'stored before', 'checkpoint_id': '{parent_id}'" in logs
    assert _values(faults, run_id) == fault_free_values("ticker", value)


@pytest.mark.fault("start-crash")
@pytest.mark.parametrize("durability", ["sync", "async"])
def test_worker_dying_in_start_after_loading_the_input_continues_without_the_sweeper(faults, durability):
    """Under "sync" the input's checkpoint was stored when the worker died:
    the redelivered start goes on from it. Under "async" it was kept for
    the start's slice, which died with it: the redelivered start loads the
    input again (stored once, per run)."""
    thread_id = faults.thread_id(f"start-crash-{durability}")
    value = {"until": 3}
    faults.arm_crash("start.loaded", thread_id, -1)
    run_id = faults.client.submit("ticker", value, thread_id, durability=durability)

    faults.wait_for(lambda: not faults.crash_file.exists(), timeout=30, what="the worker to crash in lgdist.start")
    crashed = time.monotonic()
    recovered_at = faults.wait_checkpoints(thread_id, 2, timeout=4 * faults.stall_seconds)
    recovered = recovered_at - crashed

    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    lost, duplicated = faults.assert_fault_free("ticker", thread_id, [value])
    assert not faults.swept(run_id), "the sweeper, not the redelivered start, recovered the thread"
    assert f"'status': 'continued', 'run_id': '{run_id}'" in faults.all_logs()
    assert _values(faults, run_id) == fault_free_values("ticker", value)
    record("start-crash", runs=1, lost=lost, duplicated=duplicated, recover=recovered,
           by="redelivered lgdist.start continues the run")  # fmt: skip


@pytest.mark.fault("slice-crash")
def test_worker_dying_mid_slice_under_async_durability_reruns_the_slice_from_the_last_stored_checkpoint(faults):
    """Under durability "async" a worker keeps the checkpoints of the
    one-task steps it runs inline and stores them when the slice ends: one
    that dies mid-slice stored and streamed none of the slice. The
    redelivered message goes on from the thread's last stored checkpoint;
    the thread and its stream end as the fault-free run's, each step once."""
    from lgdist.distributed.check import check_thread

    thread_id = faults.thread_id("slice-crash")
    value = {"until": 5}
    crash_step = 2  # ticker: -1 input, 0 __start__, 1.. ticks; step 2 is finished, not stored
    faults.arm_crash("finish_step.stored", thread_id, crash_step)
    run_id = faults.client.submit("ticker", value, thread_id, durability="async")

    faults.wait_for(lambda: not faults.crash_file.exists(), timeout=30, what="the worker to crash mid-slice")
    crashed = time.monotonic()
    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    recovered = time.monotonic() - crashed

    lost, duplicated = faults.assert_fault_free("ticker", thread_id, [value])
    assert check_thread(faults.client.backend, thread_id) == []
    assert _values(faults, run_id) == fault_free_values("ticker", value)
    record("slice-crash", runs=1, lost=lost, duplicated=duplicated, recover=recovered,
           by="redelivered message reruns the slice from the last stored checkpoint")  # fmt: skip


@pytest.mark.fault("slice-stored-crash")
@pytest.mark.parametrize("outage", [False, True], ids=["dies", "outage"])
@pytest.mark.parametrize("crash_step", [2, 5], ids=["mid-run", "with-the-run-end"])
def test_worker_dying_after_storing_its_slice_streams_every_step_once_without_the_sweeper(faults, crash_step, outage):
    """Under durability "async" a worker stores its slice in one
    transaction, then streams it. Dying (or meeting an outage) between the
    two: the message runs again, finds the slice stored, streams the
    values the first delivery did not and goes on from the thread's latest
    checkpoint. At the last step the slice's transaction also ended the
    run; the stream still gets the step's values and the run's end. The
    history is the fault-free one, each step stored once."""
    thread_id = faults.thread_id(f"slice-stored-{crash_step}")
    value = {"until": 5}  # ticker: -1 input, 0 __start__, 1..5 ticks; 5 ends the run
    faults.arm_crash("slice.stored", thread_id, crash_step, outage=outage)
    run_id = faults.client.submit("ticker", value, thread_id, durability="async")

    faults.wait_for(lambda: not faults.crash_file.exists(), timeout=30, what="the worker to crash after its store")
    crashed = time.monotonic()
    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    faults.wait_for(lambda: faults.stream_ended(run_id), timeout=60, what="the run's end on its stream")
    recovered = time.monotonic() - crashed

    lost, duplicated = faults.assert_fault_free("ticker", thread_id, [value])
    assert not faults.swept(run_id), "the sweeper, not the message run again, recovered the thread"
    assert _values(faults, run_id) == fault_free_values("ticker", value)
    record("slice-stored-crash", runs=1, lost=lost, duplicated=duplicated, recover=recovered,
           by="the message run again streams the stored slice and goes on")  # fmt: skip
