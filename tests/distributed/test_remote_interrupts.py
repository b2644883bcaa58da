"""``interrupt()`` inside a node on a worker, answered by a plain Celery
message carrying ``resume`` (what ``Command(resume=…)`` does locally)."""

from __future__ import annotations

import pytest

from lgdist.constants import INTERRUPT
from lgdist.types import Interrupt

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(90)]


def test_interrupt_in_a_node_is_answered_by_a_bare_resume_message(cluster, client, celery_app):
    thread_id = cluster.thread_id("approval")
    run_id = client.submit("approval", {"request": "refund #7"}, thread_id)
    events = list(client.stream_run(run_id, stream_mode="values", timeout=30))

    assert cluster.wait_run(run_id)["status"] == "interrupted"
    interrupts = events[-1][INTERRUPT]
    assert len(interrupts) == 1 and isinstance(interrupts[0], Interrupt)
    assert interrupts[0].value == {"question": "approve refund #7?"}
    paused = client.get_state("approval", thread_id)
    assert paused.next == ("ask",)
    assert [i.value for i in paused.interrupts] == [{"question": "approve refund #7?"}]
    assert "decision" not in paused.values

    result = celery_app.send_task(
        "lgdist.resume", kwargs={"v": 1, "thread_id": thread_id, "resume": "approved"}
    ).get(timeout=30)
    assert result["status"] == "started", result
    assert cluster.wait_run(result["run_id"])["status"] == "success"

    state = client.get_state("approval", thread_id)
    assert state.next == ()
    assert state.values == {"request": "refund #7", "decision": "approved", "log": ["asked", "acted:approved"]}
    assert state.interrupts == ()
    cluster.assert_linear_history(cluster.history("approval", thread_id))
    cluster.assert_thread_sound(thread_id)


def test_interrupt_resumed_by_interrupt_id_map(cluster, client, celery_app):
    thread_id = cluster.thread_id("approval-id")
    run_id = client.submit("approval", {"request": "deploy"}, thread_id)
    assert cluster.wait_run(run_id)["status"] == "interrupted"
    (pending,) = client.get_state("approval", thread_id).interrupts

    result = celery_app.send_task(
        "lgdist.resume", kwargs={"v": 1, "thread_id": thread_id, "resume": {pending.id: "no"}}
    ).get(timeout=30)
    assert cluster.wait_run(result["run_id"])["status"] == "success"
    assert client.get_state("approval", thread_id).values["log"] == ["asked", "acted:no"]
