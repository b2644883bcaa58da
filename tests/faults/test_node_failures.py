"""A node's own failures: it raises, it hangs past the task time limit, it
fails twice and its RetryPolicy gets it through. Each run ends in a state
the user can see and act on, with the thread as the fault-free run leaves
it."""

from __future__ import annotations

import time

import pytest
from faultlib import TASK_TIME_LIMIT, record

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


@pytest.mark.fault("node-raises")
def test_a_node_that_raises_ends_the_run_as_error_with_its_traceback(faults):
    thread_id = faults.thread_id("raises")
    sent = time.monotonic()
    run = faults.wait_run(faults.client.submit("failing", {"n": 0}, thread_id))
    ended = time.monotonic() - sent

    assert run["status"] == "error"
    assert run["error"].startswith("node 'boom' failed:\nTraceback (most recent call last):")
    assert "ValueError: the node failed on purpose" in run["error"]
    assert faults.thread_status(thread_id) == "error"
    state = faults.client.get_state("failing", thread_id)
    assert state.next == ("boom",) and "the node failed on purpose" in repr(state.tasks[0].error)
    lost, duplicated = faults.assert_fault_free("failing", thread_id, [{"n": 0}])
    record("node-raises", runs=1, lost=lost, duplicated=duplicated, recover=ended, by="run error (traceback)")


@pytest.mark.fault("node-hangs")
@pytest.mark.parametrize("graph", ["hang", "retried-hang"])
def test_a_node_that_hangs_past_the_time_limit_ends_the_run_as_a_timeout_error(faults, graph):
    """Under a RetryPolicy that retries any exception too: a time limit is
    not transient, so the soft limit's exception is never retried."""
    thread_id = faults.thread_id(graph)
    run_id = faults.client.submit(graph, {"n": 0}, thread_id)
    # Time from the node starting (its step's checkpoint) to the run's end.
    faults.wait_checkpoints(thread_id, 2)
    started = time.monotonic()
    run = faults.wait_run(run_id, timeout=4 * TASK_TIME_LIMIT)
    ended = time.monotonic() - started

    assert run["status"] == "error"
    assert run["error"] == (
        f"node 'hang' timed out: it ran past the task time limit of {TASK_TIME_LIMIT}s (LGDIST_TASK_TIME_LIMIT)"
    )
    assert TASK_TIME_LIMIT - 0.5 < ended < TASK_TIME_LIMIT + 3
    assert faults.thread_status(thread_id) == "error"
    assert "Soft time limit (3.0s) exceeded for lgdist.run_node" in faults.all_logs()
    lost, duplicated = faults.assert_fault_free(graph, thread_id, [{"n": 0}])
    # The worker that ran it is fine: the soft limit stopped the node, not the process.
    assert faults.app.control.ping(destination=[w.nodename for w in faults.workers], timeout=2.0)
    record("node-hangs", runs=1, lost=lost, duplicated=duplicated, recover=ended, by="soft time limit -> run error")


@pytest.mark.fault("node-hangs")
def test_a_node_that_survives_the_soft_limit_is_killed_at_the_hard_limit_and_the_run_ends(faults):
    """The node swallows the soft limit's exception, so the worker
    kills the pool process at the hard limit (soft + 5 s). The chord is
    broken then; the task's failure handler, in the worker's main process,
    ends the run with the reason."""
    thread_id = faults.thread_id("stubborn")
    run_id = faults.client.submit("stubborn-hang", {"n": 0}, thread_id)
    faults.wait_checkpoints(thread_id, 2)
    started = time.monotonic()
    run = faults.wait_run(run_id, timeout=4 * TASK_TIME_LIMIT + 10)
    ended = time.monotonic() - started

    assert run["status"] == "error"
    assert run["error"] == f"node 'hang' timed out: its process was killed at the hard time limit of {TASK_TIME_LIMIT + 5}s"
    assert TASK_TIME_LIMIT + 4.5 < ended < TASK_TIME_LIMIT + 9
    assert "Hard time limit (8.0s) exceeded for lgdist.run_node" in faults.all_logs()
    # It ran past stall_seconds, but its heartbeat kept the sweeper from running it twice.
    assert not faults.swept(run_id)
    state = faults.client.get_state("stubborn-hang", thread_id)
    assert state.next == ("hang",) and "hard time limit" in repr(state.tasks[0].error)
    lost, duplicated = faults.assert_fault_free("stubborn-hang", thread_id, [{"n": 0}])
    record("node-hangs", runs=1, lost=lost, duplicated=duplicated, recover=ended, by="hard time limit -> run error")


@pytest.mark.fault("node-retried")
def test_a_node_retried_by_its_retry_policy_succeeds(faults):
    thread_id = faults.thread_id("flaky")
    value = {"key": thread_id, "n": 0}
    sent = time.monotonic()
    run = faults.wait_run(faults.client.submit("flaky", value, thread_id))
    ended = time.monotonic() - sent

    assert run["status"] == "success" and run["error"] is None
    assert faults.client.get_state("flaky", thread_id).values == {"key": thread_id, "n": 1, "attempts": 3}
    lost, duplicated = faults.assert_fault_free("flaky", thread_id, [value])
    record("node-retried", runs=1, lost=lost, duplicated=duplicated, recover=ended, by="RetryPolicy (in the node task)")
