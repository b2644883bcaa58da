"""Cancelling a run while its node is on its way to ``interrupt()``: the
thread must stay resumable (its latest checkpoint has a pending task), not
become ``idle`` with every later resume refused."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def test_a_run_cancelled_while_its_node_interrupts_leaves_the_thread_resumable(faults):
    client = faults.client
    thread_id = faults.thread_id("cancel-ask")
    run_id = client.submit("slow-ask", {"topic": "deploy"}, thread_id)
    faults.wait_for(lambda: client.get_run(run_id)["status"] == "running", what="the run to start")
    assert client.cancel(run_id) is True
    faults.wait_for(lambda: faults.thread_status(thread_id) != "busy", timeout=60, what="the cancelled run to let go")
    assert client.get_run(run_id)["status"] == "cancelled"
    assert faults.thread_status(thread_id) == "interrupted"
    faults.assert_thread_sound(thread_id)

    resumed = client.resume(thread_id, "yes")
    run = faults.wait_run(resumed, timeout=60)
    if run["status"] == "interrupted":  # cancelled before the node ran: it asks now
        run = faults.wait_run(client.resume(thread_id, "yes"), timeout=60)
    assert run["status"] == "success", run
    values = client.get_state("slow-ask", thread_id).values
    assert values["topic"] == "deploy" and values["decision"] == "yes"
    faults.assert_thread_sound(thread_id)
