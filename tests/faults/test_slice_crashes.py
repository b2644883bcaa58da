"""Durability "async" with long slices: a worker that runs a run's
one-task steps inline keeps their checkpoints and stores them in one
transaction (with the run's end, when the run ends there), then streams
them. Dying between the store and the stream, it leaves stored steps no
reader saw: the message run again (here ``lgdist.start``, which ran the
run's first steps) streams their values once and goes on, without the
sweeper. The fault cluster's own workers have a node time limit, which
turns inline steps off; these run on workers without one whose node time
budget is far above the ticker's, so a slice ends only after
``LGDIST_INLINE_STEPS`` steps or with the run."""

from __future__ import annotations

import pytest
from faultlib import fault_free_values, record

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


@pytest.mark.fault("slice-stored-crash")
@pytest.mark.parametrize("outage", [False, True], ids=["dies", "outage"])
@pytest.mark.parametrize(
    ("until", "crash_step"),
    # ticker: -1 input, 0 __start__, 1.. ticks. With 12 ticks the start's
    # slice is 8 steps (0..7) and step 8 goes to the queue; with 5 the
    # whole run and its end are one slice.
    [(12, 7), (5, 5)],
    ids=["mid-run", "with-the-run-end"],
)
def test_a_slice_stored_but_not_streamed_is_streamed_once_by_the_message_run_again(long_slices, until, crash_step, outage):
    faults, client = long_slices.faults, long_slices.client
    thread_id = faults.thread_id(f"long-slice-{crash_step}")
    value = {"until": until}
    faults.arm_crash("slice.stored", thread_id, crash_step, outage=outage)
    run_id = client.submit("ticker", value, thread_id, durability="async")

    faults.wait_for(lambda: not faults.crash_file.exists(), timeout=30, what="the worker to crash after its store")
    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    faults.wait_for(lambda: faults.stream_ended(run_id), timeout=60, what="the run's end on its stream")

    lost, duplicated = faults.assert_fault_free("ticker", thread_id, [value])
    assert not long_slices.swept(run_id), "the sweeper, not the message run again, recovered the thread"
    logs = long_slices.logs()
    assert "exited with 'exitcode 70'" in logs or "WorkerLostError" in logs or "injected outage" in logs
    values = [c for m, c in client.events(run_id, timeout=10) if m == "values"]
    assert values == fault_free_values("ticker", value)
    record("slice-stored-crash", runs=1, lost=lost, duplicated=duplicated, recover=None,
           by="the message run again streams the stored slice and goes on")  # fmt: skip


@pytest.mark.fault("slice-stored-crash")
def test_a_callback_slice_stored_with_the_run_end_but_not_streamed_is_streamed_once(long_slices):
    """A wide step's callback keeps its step with the one-task step it runs
    next (``total``) and the run's end: one transaction. Dying after it,
    the redelivered callback finds the run ended and streams the two
    steps' values and the run's end."""
    faults, client = long_slices.faults, long_slices.client
    thread_id = faults.thread_id("long-slice-callback")
    value = {"items": [1, 2, 3]}
    # wide: -1 input, 0 __start__, 1 split, 2 double x 3 (the callback's
    # step), 3 total (run in the callback), then the run ends.
    faults.arm_crash("slice.stored", thread_id, 3)
    run_id = client.submit("wide", value, thread_id, durability="async")

    faults.wait_for(lambda: not faults.crash_file.exists(), timeout=30, what="the callback to crash after its store")
    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    faults.wait_for(lambda: faults.stream_ended(run_id), timeout=60, what="the run's end on its stream")

    lost, duplicated = faults.assert_fault_free("wide", thread_id, [value])
    assert not long_slices.swept(run_id), "the sweeper, not the callback run again, recovered the thread"
    values = [c for m, c in client.events(run_id, timeout=10) if m == "values"]
    assert values == fault_free_values("wide", value)
    record("slice-stored-crash", runs=1, lost=lost, duplicated=duplicated, recover=None,
           by="the message run again streams the stored slice and goes on")  # fmt: skip
