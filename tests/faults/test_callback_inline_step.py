"""A wide step's callback runs the one-task step after it (``finish_step``
→ ``_go_on``), and dies: after storing its own step, or after storing the
step it ran inline. Its redelivery must neither store a step twice nor
lose the inline step, without the sweeper.

The fault cluster's workers run with a node time limit, which turns inline
steps off (each node then gets a task of its own); these tests start two
more workers on a queue of their own without one, on the same Redis,
Postgres schema, crash file and sweeper.
"""

from __future__ import annotations

from collections import Counter

import pytest
from faultlib import Inline, fault_free_values, record

from lgdist.distributed.coordinator import WORKER_MODE

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]

VALUE = {"items": [1, 2, 3]}
# wide: -1 input, 0 __start__, 1 split, 2 double x 3 (the chord's callback
# stores it), 3 total (run and stored by the callback), then the run ends.
WIDE_STEP, TOTAL_STEP = 2, 3


def _wide_checkpoint(inline: Inline, thread_id: str) -> str:
    (snap,) = [s for s in inline.faults.history("wide", thread_id) if s.metadata["step"] == WIDE_STEP - 1]
    return snap.config["configurable"]["checkpoint_id"]


def test_the_callback_of_a_wide_step_runs_the_one_task_step_after_it(inline):
    faults = inline.faults
    thread_id = faults.thread_id("inline-total")
    run_id = inline.client.submit("wide", VALUE, thread_id)
    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    faults.assert_fault_free("wide", thread_id, [VALUE])
    wide = _wide_checkpoint(inline, thread_id)
    # One callback, which ran total: no run_node message for it.
    logs = inline.logs()
    assert "'next': {'node': 'total', 'status': 'ok', 'outcome': 'stored'}" in logs
    assert f"'checkpoint_id': '{wide}'" in logs
    ran = Counter(c["node"] for m, c in inline.client.events(run_id, timeout=10) if m == WORKER_MODE)
    assert ran == {"__start__": 1, "split": 1, "double": 3, "total": 1}, ran


@pytest.mark.fault("finish-step-crash")
@pytest.mark.parametrize("durability", ["sync", "async"])
@pytest.mark.parametrize("crash_step", [WIDE_STEP, TOTAL_STEP], ids=["before-the-inline-step", "after-the-inline-step"])
def test_a_callback_dying_around_its_inline_step_is_redelivered_without_the_sweeper(inline, crash_step, durability):
    """Under "sync": dying after storing its own step (the inline step not
    stored), the redelivery finds its step stored and sends total, which no
    one claimed; dying after storing total's step (the run not ended), the
    redelivery goes on from the latest checkpoint, total's, and ends the
    run. Under "async" the callback keeps its step with total's and the
    run's end, so at either point it dies with nothing stored: the
    redelivery stores its step at once and goes on (dying after that
    store: tests/faults/test_slice_crashes.py). Either way the history is
    the fault-free one and every step is stored once."""
    faults = inline.faults
    thread_id = faults.thread_id(f"inline-crash-{crash_step}-{durability}")
    faults.arm_crash("finish_step.stored", thread_id, crash_step)
    run_id = inline.client.submit("wide", VALUE, thread_id, durability=durability)
    faults.wait_for(lambda: not faults.crash_file.exists(), timeout=30, what="the callback to crash")

    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    lost, duplicated = faults.assert_fault_free("wide", thread_id, [VALUE])
    assert not inline.swept(run_id), "the sweeper, not the redelivered callback, recovered the thread"
    logs = inline.logs()
    assert "exited with 'exitcode 70'" in logs or "WorkerLostError" in logs
    wide = _wide_checkpoint(inline, thread_id)
    if durability == "sync":
        assert f"'outcome': 'stored before', 'checkpoint_id': '{wide}'" in logs, "the callback was not redelivered"
    else:
        # Only a callback that completed logs its result.
        assert f"'checkpoint_id': '{wide}'" in logs, "the callback was not redelivered"
    # The stream has every step's values once, as a fault-free run's.
    values = [c for m, c in inline.client.events(run_id, timeout=10) if m == "values"]
    assert values == fault_free_values("wide", VALUE)
    record("finish-step-crash", runs=1, lost=lost, duplicated=duplicated, recover=None,
           by="redelivered finish_step goes on from the latest checkpoint")  # fmt: skip
