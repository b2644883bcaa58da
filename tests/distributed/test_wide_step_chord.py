"""A wide step's chord on Redis: the header tasks store no result (the
callback reads their writes from the step's Redis hash; Celery's Redis
backend counts the chord's parts whether or not a task stores one), the
callback does, and the one-task step after the wide step runs in the
callback, not in a message of its own."""

from __future__ import annotations

import pytest

from lgdist.distributed.coordinator import WORKER_MODE

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(90)]


def test_a_wide_steps_tasks_store_no_result_and_its_callback_runs_the_next_step(cluster, client, celery_app):
    thread_id = cluster.thread_id("chord")
    run_id = client.submit("fanout", {"items": [1, 2, 3]}, thread_id)
    assert cluster.wait_run(run_id, timeout=60)["status"] == "success"
    (wide,) = [s for s in cluster.history("fanout", thread_id) if [t.name for t in s.tasks] == ["work"] * 3]
    checkpoint_id = wide.config["configurable"]["checkpoint_id"]

    for task in wide.tasks:
        assert celery_app.AsyncResult(f"{checkpoint_id}.{task.id}").state == "PENDING"  # nothing stored
    callback = celery_app.AsyncResult(f"{checkpoint_id}.finish")
    assert callback.state == "SUCCESS"
    outcome = callback.get(timeout=5)
    assert outcome["outcome"] == "stored" and outcome["checkpoint_id"] == checkpoint_id
    assert outcome["next"] == {"node": "join", "status": "ok", "outcome": "stored"}

    ran = [c for m, c in client.events(run_id, timeout=10) if m == WORKER_MODE]
    assert sorted(c["node"] for c in ran) == ["__start__", "join", "split", "work", "work", "work"]
    assert client.get_state("fanout", thread_id).values["results"] == [2, 4, 6, 12]
    cluster.assert_thread_sound(thread_id)
