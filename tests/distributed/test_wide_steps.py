"""A wide step's tasks keep their writes in Redis for the step's callback;
where the step does not complete, those writes outlive it in the store:
an interrupt or a failure beside tasks that finished, as in LangGraph
(get_state shows their writes; a resume does not run them again)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(90)]


def _finished(snapshot) -> dict:
    """The results of the tasks of the snapshot's step that finished."""
    return {t.id: t.result for t in snapshot.tasks if t.result is not None}


def test_an_interrupt_in_a_wide_step_keeps_the_other_tasks_writes_and_resume_runs_only_it(cluster, client):
    thread_id = cluster.thread_id("wide-ask")
    run_id = client.submit("mixed-fanout", {"items": ["a", "b", "ask"]}, thread_id)
    assert cluster.wait_run(run_id)["status"] == "interrupted"

    snapshot = client.get_state("mixed-fanout", thread_id)
    assert [t.name for t in snapshot.tasks] == ["mixed_work"] * 3
    assert sorted(r["results"][0] for r in _finished(snapshot).values()) == ["a", "b"]
    assert [i.value for t in snapshot.tasks for i in t.interrupts] == ["ask?"]

    resumed = client.resume(thread_id, "yes")
    assert cluster.wait_run(resumed)["status"] == "success"
    values = client.get_state("mixed-fanout", thread_id).values
    assert sorted(values["results"][:-1]) == ["a", "ask=yes", "b"] and values["results"][-1] == "joined"
    ran = [r["node"] for r in client.workers_of(resumed)]
    assert ran.count("mixed_work") == 1, ran  # the tasks that finished did not run again
    cluster.assert_thread_sound(thread_id)


def test_a_failed_task_in_a_wide_step_leaves_its_siblings_writes_stored(cluster, client):
    thread_id = cluster.thread_id("wide-boom")
    run_id = client.submit("mixed-fanout", {"items": ["a", "boom", "late"]}, thread_id)
    run = cluster.wait_run(run_id)
    assert run["status"] == "error" and "boom" in run["error"], run

    # "late" finishes a second after the run ended: no callback follows
    # the failed step, so it stores its own writes.
    def both_stored() -> bool:
        return sorted(r["results"][0] for r in _finished(client.get_state("mixed-fanout", thread_id)).values()) == [
            "a", "late",
        ]  # fmt: skip

    cluster.wait_for(both_stored, timeout=30, what="the writes of the tasks that finished")
    snapshot = client.get_state("mixed-fanout", thread_id)
    assert [t.error for t in snapshot.tasks if t.error] and len(snapshot.tasks) == 3
    cluster.assert_thread_sound(thread_id)
