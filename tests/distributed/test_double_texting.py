"""A second submission on a busy thread: rejected, or queued and run after
the active one."""

from __future__ import annotations

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


def test_a_rejected_submission_never_leaves_a_pending_run_behind(cluster, client):
    """Creating a run and claiming its thread is one transaction: a
    ``reject`` submission on a busy thread is an error run from the start,
    never a pending one that the active run's end could take for an
    enqueued run and start."""
    thread_id = cluster.thread_id("race")
    active = client.submit("slow", {"n": 0}, thread_id)
    with pytest.raises(ThreadBusyError):
        client.submit("slow", {"n": 4}, thread_id)
    assert [r["status"] for r in client.runs(thread_id) if r["run_id"] != active] == ["error"]
    assert cluster.wait_run(active)["status"] == "success"
    assert sorted(r["status"] for r in client.runs(thread_id)) == ["error", "success"]
    assert cluster.thread_status(thread_id) == "idle"
    assert client.get_state("slow", thread_id).values == {"n": 5, "trail": [0, 1, 2, 3, 4]}
