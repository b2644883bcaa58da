"""Bad messages end as error runs with a clear text and leave the thread as
it was: an unregistered graph name, malformed resume payloads, a resume of a
thread that is not interrupted."""

from __future__ import annotations

from typing import Any

import pytest

from lgdist.client import RemoteGraph
from lgdist.client.client import RunFailedError

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(90)]



def _thread_fingerprint(cluster: Any, graph: str, thread_id: str) -> tuple:
    state = cluster.client.get_state(graph, thread_id)
    history = cluster.history(graph, thread_id)
    return (
        state.values,
        state.next,
        [i.id for i in state.interrupts],
        [(s.config["configurable"]["checkpoint_id"], s.metadata["step"], s.values) for s in history],
    )


def _paused_approval(cluster: Any) -> str:
    thread_id = cluster.thread_id("approval-bad")
    run_id = cluster.client.submit("approval", {"request": "wire $5"}, thread_id)
    assert cluster.wait_run(run_id)["status"] == "interrupted"
    return thread_id


def test_unregistered_graph_ends_the_run_with_an_error_naming_the_registered_graphs(cluster, client):
    thread_id = cluster.thread_id("nograph")
    run_id = client.submit("no-such-graph", {"n": 0}, thread_id)

    run = cluster.wait_run(run_id)
    assert run["status"] == "error"
    assert "'no-such-graph' is not registered" in run["error"]
    # The workers' registry is the session's LGDIST_GRAPHS, which the client shares.
    registered = client.backend.registry.names()
    assert "approval" in registered and "support-agent" in registered
    assert f"registered: {', '.join(registered)}" in run["error"]
    assert cluster.thread_status(thread_id) != "busy"

    with pytest.raises(RunFailedError, match="is not registered on this worker; registered: approval"):
        list(RemoteGraph("also-missing", client=client).stream({"n": 0}, {"configurable": {"thread_id": cluster.thread_id()}}))


@pytest.mark.parametrize(
    "payload, problem",
    [
        ({"bogus": 1}, "Extra inputs are not permitted"),
        ({"v": 99}, "Input should be 1"),
        ({"as_node": "ask"}, "as_node is only meaningful together with update"),
    ],
    ids=["unknown-field", "unknown-version", "as_node-without-update"],
)
def test_malformed_resume_payload_is_an_error_run_and_leaves_the_thread_unchanged(
    cluster, client, celery_app, payload, problem
):
    thread_id = _paused_approval(cluster)
    before = _thread_fingerprint(cluster, "approval", thread_id)

    result = celery_app.send_task("lgdist.resume", kwargs={"v": 1, "thread_id": thread_id, **payload}).get(timeout=30)

    assert result["status"] == "rejected"
    run = client.get_run(result["run_id"])
    assert run["status"] == "error" and run["thread_id"] == thread_id
    assert "malformed lgdist.resume message rejected" in run["error"]
    assert problem in run["error"]
    errors = [(m, c) for m, c in client.events(result["run_id"], timeout=5)]
    assert errors == [("__end__", {"status": "error", "error": run["error"]})]
    assert _thread_fingerprint(cluster, "approval", thread_id) == before
    assert cluster.thread_status(thread_id) == "interrupted"

    # The thread still resumes normally afterwards.
    ok = celery_app.send_task("lgdist.resume", kwargs={"v": 1, "thread_id": thread_id, "resume": "fine"}).get(timeout=30)
    assert cluster.wait_run(ok["run_id"])["status"] == "success"
    assert client.get_state("approval", thread_id).values["log"] == ["asked", "acted:fine"]


def test_resume_of_a_thread_that_is_not_interrupted_is_a_clear_error_run(cluster, client, celery_app):
    thread_id = cluster.thread_id("done")
    assert cluster.wait_run(client.submit("counter", {"n": 3}, thread_id))["status"] == "success"
    before = _thread_fingerprint(cluster, "counter", thread_id)

    result = celery_app.send_task("lgdist.resume", kwargs={"v": 1, "thread_id": thread_id, "resume": "x"}).get(timeout=30)

    assert result["status"] == "error"
    run = client.get_run(result["run_id"])
    assert run["status"] == "error"
    assert run["error"] == f"thread {thread_id!r} is not interrupted (status: idle); nothing to resume"
    assert _thread_fingerprint(cluster, "counter", thread_id) == before
    assert cluster.thread_status(thread_id) == "idle"


def test_resume_of_an_unknown_thread_is_rejected_without_creating_it(cluster, client, celery_app):
    thread_id = cluster.thread_id("ghost")
    result = celery_app.send_task("lgdist.resume", kwargs={"v": 1, "thread_id": thread_id}).get(timeout=30)
    assert result["status"] == "rejected"
    assert "has no runs; nothing to resume" in result["error"]
    assert client.runs(thread_id) == []
    assert cluster.thread_status(thread_id) is None


def test_a_failing_node_ends_the_run_with_its_error(cluster, client):
    thread_id = cluster.thread_id("boom")
    run = cluster.wait_run(client.submit("failing", {"n": 0}, thread_id))
    assert run["status"] == "error"
    assert "node 'boom' failed" in run["error"] and "the node failed on purpose" in run["error"]
    assert cluster.thread_status(thread_id) == "error"
