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


def test_a_wide_step_is_sent_as_the_messages_celerys_chord_sends(monkeypatch):
    """On Redis the coordinator sends a wide step's messages itself (no
    subscription per header task to results no one reads, no ``saferepr``):
    the messages are the ones ``chord(header)(body)`` sends, but for the
    group id each send makes up and the header tasks' stored results."""
    import base64
    import json
    import types
    import uuid

    import redis

    from lgdist.distributed import coordinator
    from lgdist.distributed.app import create_app
    from lgdist.distributed.messages import FinishStepMessage
    from lgdist.settings import Settings
    from tests.conftest import POSTGRES_URL, REDIS_URL

    queue = f"lgdist-test-chord-{uuid.uuid4().hex[:8]}"
    settings = Settings(broker_url=REDIS_URL, database_url=POSTGRES_URL, default_queue=queue, node_queues="")
    app = create_app(settings)
    client = redis.Redis.from_url(REDIS_URL)
    backend = types.SimpleNamespace(app=app, settings=settings)
    run = types.SimpleNamespace(run_id="run-1", thread_id="thread-1", graph="fanout")
    tasks = [types.SimpleNamespace(id=f"task-{i}", name=f"work{i}") for i in range(3)]
    finish = FinishStepMessage(run_id="run-1", thread_id="thread-1", graph="fanout", checkpoint_id="cp-1", resumed=False)

    def sent() -> list[dict]:
        messages = []
        while (raw := client.rpop(queue)) is not None:
            message = json.loads(raw)
            message["body"] = json.loads(base64.b64decode(message["body"]))
            messages.append(message)
        return messages

    try:
        coordinator.send_wide_step(backend, run, "cp-1", tasks, finish, suffix="", step_has_writes=False)
        ours = sent()
        assert coordinator._joins_chords_itself(backend)
        monkeypatch.setattr(coordinator, "_joins_chords_itself", lambda backend: False)  # Celery's chord()
        coordinator.send_wide_step(backend, run, "cp-1", tasks, finish, suffix="", step_has_writes=False)
        celerys = sent()
        assert len(ours) == len(celerys) == 3
        for mine, theirs in zip(ours, celerys):
            group = mine["headers"]["group"]
            assert group and client.get(f"celery-taskset-meta-{group}.s") == b"3"  # the part counter
            theirs_headers = {**theirs["headers"], "group": group, "ignore_result": True}
            assert mine["headers"] == theirs_headers
            args, kwargs, embed = theirs["body"]
            embed["chord"]["options"]["group_id"] = group
            assert mine["body"] == [args, kwargs, embed]
            assert mine["body"][2]["chord"]["task"] == "lgdist.finish_step"
    finally:
        client.delete(queue)
