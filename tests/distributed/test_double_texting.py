"""A second submission on a busy thread: rejected, or queued and run after
the active one."""

from __future__ import annotations

import time

import pytest

from lgdist.errors import ThreadBusyError

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(90)]


def test_second_submit_on_a_busy_thread_is_rejected(cluster, client):
    thread_id = cluster.thread_id("busy")
    first = client.submit("slow", {"n": 0}, thread_id)

    with pytest.raises(ThreadBusyError, match="already has an active run"):
        client.submit("slow", {"n": 4}, thread_id, multitask_strategy="reject")

    assert cluster.wait_run(first)["status"] == "success"
    runs = client.runs(thread_id)
    assert sorted(r["status"] for r in runs) == ["error", "success"]
    (rejected,) = [r for r in runs if r["status"] == "error"]
    assert "busy" in rejected["error"]
    assert client.get_state("slow", thread_id).values == {"n": 5, "trail": [0, 1, 2, 3, 4]}
    cluster.assert_linear_history(cluster.history("slow", thread_id))
    cluster.assert_thread_sound(thread_id)


def test_enqueued_runs_on_a_busy_thread_run_one_after_another_in_order(cluster, client):
    thread_id = cluster.thread_id("queue")
    first = client.submit("slow", {"n": 0}, thread_id)
    second = client.submit("slow", {"n": 3}, thread_id, multitask_strategy="enqueue")
    third = client.submit("slow", {"n": 4}, thread_id, multitask_strategy="enqueue")
    assert client.get_run(second)["status"] == "pending"

    for run_id in (first, second, third):
        assert cluster.wait_run(run_id)["status"] == "success"

    # Each input starts from the previous run's final state: the trail shows
    # the runs ran whole and in submission order.
    assert client.get_state("slow", thread_id).values == {"n": 5, "trail": [0, 1, 2, 3, 4, 3, 4, 4]}
    history = cluster.history("slow", thread_id)
    cluster.assert_linear_history(history)
    cluster.assert_thread_sound(thread_id)
    assert [s.metadata["source"] for s in history].count("input") == 3
    assert cluster.thread_status(thread_id) == "idle"


def test_a_run_being_submitted_with_reject_is_not_started_by_the_previous_runs_end(cluster, client):
    """The client creates a run row, then claims the thread. If the active
    run ends in between, its worker must not take the half-submitted
    ``reject`` run for an enqueued one: that would claim the thread for it,
    make the client's own claim fail with ThreadBusyError, and leave the
    thread busy with a run that is marked as an error."""
    thread_id = cluster.thread_id("race")
    active = client.submit("slow", {"n": 0}, thread_id)
    # The first half of a `reject` submission, paused before its claim.
    half = client.backend.runs.create_run(
        thread_id=thread_id, graph="slow", kind="start", input={"n": 4},
        options={"stream_modes": ["values"], "multitask_strategy": "reject"},
    )  # fmt: skip
    assert cluster.wait_run(active)["status"] == "success"
    time.sleep(0.5)  # the ended run's worker has looked for a next run by now

    assert client.get_run(half.run_id)["status"] == "pending"
    assert cluster.thread_status(thread_id) == "idle"
    # The second half: the claim succeeds and the run is the client's to start.
    assert client.backend.runs.claim_thread(thread_id, "slow", half.run_id, ("idle", "interrupted", "error"))
    client.backend.runs.set_run(half.run_id, status="cancelled")
    client.backend.runs.release_thread(thread_id, half.run_id, "idle")
