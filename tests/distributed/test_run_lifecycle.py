"""Runs and threads as one state machine, on real workers: resumes that are
idempotent per run id, cancels that keep a thread resumable, updates that
are refused rather than lost, forks and recursion limits as the local
runtime has them, and a bare ``send_task`` from a program that knows nothing
of lgdist."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest
from celery import Celery

from lgdist.client import RemoteGraph
from lgdist.client.client import RunFailedError
from lgdist.distributed import lifecycle
from lgdist.errors import GraphRecursionError, InvalidThreadIdError, ThreadBusyError, ThreadNotFoundError
from lgdist.types import Command

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def _interrupted_approval(cluster, client, prefix: str) -> str:
    thread_id = cluster.thread_id(prefix)
    run_id = client.submit("approval", {"request": "refund #9"}, thread_id)
    assert cluster.wait_run(run_id)["status"] == "interrupted"
    return thread_id


def _resume_kwargs(thread_id: str, run_id: str, value: str) -> dict:
    return {"v": 1, "thread_id": thread_id, "run_id": run_id, "resume": value}


def test_a_redelivered_resume_finds_its_own_run_holding_the_thread_and_starts_it(cluster, client, celery_app):
    """The worker died after creating the resume's run and claiming the
    thread, before starting it: the redelivery must start that run."""
    thread_id = _interrupted_approval(cluster, client, "redelivered-resume")
    run_id = "resume-" + thread_id[-10:]
    # What the first delivery did before its worker died.
    run, claimed = lifecycle.submit(
        client.backend.runs, thread_id=thread_id, graph="approval", kind="resume", input=Command(resume="yes"),
        options={"stream_modes": ["values"]}, run_id=run_id, claim_from=lifecycle.RESUMABLE,
    )  # fmt: skip
    assert claimed and run.status == "pending" and cluster.thread_status(thread_id) == "busy"

    result = celery_app.send_task("lgdist.resume", kwargs=_resume_kwargs(thread_id, run_id, "yes")).get(timeout=30)
    assert result == {"status": "started", "run_id": run_id}
    assert cluster.wait_run(run_id)["status"] == "success"
    assert client.get_state("approval", thread_id).values["log"] == ["asked", "acted:yes"]
    assert [r["status"] for r in client.runs(thread_id)] == ["success", "interrupted"]
    cluster.assert_thread_sound(thread_id)


def test_two_copies_of_one_resume_message_make_one_run(cluster, client, celery_app):
    thread_id = _interrupted_approval(cluster, client, "duplicate-resume")
    run_id = "dup-" + thread_id[-10:]
    kwargs = _resume_kwargs(thread_id, run_id, "yes")
    results = [celery_app.send_task("lgdist.resume", kwargs=kwargs) for _ in range(3)]
    statuses = sorted(r.get(timeout=30)["status"] for r in results)
    assert "error" not in statuses, statuses
    assert cluster.wait_run(run_id)["status"] == "success"
    assert [r["status"] for r in client.runs(thread_id)] == ["success", "interrupted"]
    assert client.get_state("approval", thread_id).values["log"] == ["asked", "acted:yes"]
    cluster.assert_thread_sound(thread_id)


def test_cancelling_a_resume_run_leaves_the_thread_resumable(cluster, client, celery_app):
    thread_id = _interrupted_approval(cluster, client, "cancel-resume")
    # A resume run that holds the thread but has not started yet.
    run, claimed = lifecycle.submit(
        client.backend.runs, thread_id=thread_id, graph="approval", kind="resume", input=Command(resume="yes"),
        options={"stream_modes": ["values"]}, claim_from=lifecycle.RESUMABLE,
    )  # fmt: skip
    assert claimed
    assert client.cancel(run.run_id) is True
    assert client.get_run(run.run_id)["status"] == "cancelled"
    assert cluster.thread_status(thread_id) == "interrupted"
    cluster.assert_thread_sound(thread_id)

    later = client.resume(thread_id, "later")
    assert cluster.wait_run(later)["status"] == "success"
    assert client.get_state("approval", thread_id).values["log"] == ["asked", "acted:later"]


def test_update_state_on_a_busy_thread_is_refused_not_lost(cluster, client):
    thread_id = cluster.thread_id("busy-update")
    run_id = client.submit("slow", {"n": 0}, thread_id)
    cluster.wait_for(lambda: cluster.thread_status(thread_id) == "busy", what="the run to hold its thread")
    with pytest.raises(ThreadBusyError, match="busy with run"):
        client.update_state("slow", thread_id, {"n": 100})
    assert cluster.wait_run(run_id)["status"] == "success"
    assert client.get_state("slow", thread_id).values["n"] == 5

    client.update_state("slow", thread_id, {"n": 100})
    assert client.get_state("slow", thread_id).values["n"] == 100
    assert cluster.thread_status(thread_id) == "idle"
    cluster.assert_thread_sound(thread_id)


def test_a_bare_resume_from_a_plain_celery_app_is_consumed(cluster, client):
    """Exactly the README's snippet: a Celery app that imports nothing from
    lgdist, ``send_task`` with no queue and no routing."""
    thread_id = _interrupted_approval(cluster, client, "bare-resume")
    plain = Celery("producer", broker=cluster.env["LGDIST_BROKER_URL"], backend=cluster.env["LGDIST_BROKER_URL"])
    try:
        result = plain.send_task("lgdist.resume", kwargs={"v": 1, "thread_id": thread_id, "resume": "approved"})
        answer = result.get(timeout=60)
    finally:
        plain.close()
    assert answer["status"] == "started", answer
    assert cluster.wait_run(answer["run_id"])["status"] == "success"
    assert client.get_state("approval", thread_id).values["log"] == ["asked", "acted:approved"]


def test_answering_an_old_interrupt_again_forks_the_thread_remotely(cluster, client):
    """``Command(resume=...)`` with the config of an old checkpoint answers
    its interrupt again: a branch, locally and in LangGraph."""
    graph = RemoteGraph("approval", client=client)
    thread_id = cluster.thread_id("fork-old")
    config = {"configurable": {"thread_id": thread_id}}
    graph.invoke({"request": "deploy"}, config)
    paused = graph.get_state(config).config
    assert graph.invoke(Command(resume="yes"), config)["log"] == ["asked", "acted:yes"]

    # As in LangGraph: the answered task's saved writes stand, and the
    # step after the old checkpoint is stored again as a second branch.
    forked = graph.invoke(Command(resume="no"), paused)
    assert forked["log"] == ["asked", "acted:yes"]
    history = client.get_state_history("approval", thread_id)
    parent_of = [(h.parent_config or {}).get("configurable", {}).get("checkpoint_id") for h in history]
    assert parent_of.count(paused["configurable"]["checkpoint_id"]) == 2
    assert cluster.thread_status(thread_id) == "idle"
    cluster.assert_thread_sound(thread_id)


def test_new_input_after_a_breakpoint_discards_the_old_pending_tasks_remotely(cluster, client):
    """The old input's Sends wait at a breakpoint; new input discards them
    (as LangGraph does), so only the new items are worked on."""
    from lgdist.checkpoint.memory import InMemorySaver
    from workers import examples

    def run(graph, config):
        graph.invoke({"items": [1, 2]}, config, interrupt_before=["work"])
        graph.invoke({"items": [10]}, config)
        return graph.get_state(config).values

    local = examples.build_fanout().compile(checkpointer=InMemorySaver())
    expected = run(local, {"configurable": {"thread_id": "local"}})
    assert expected["results"] == [20, 20]
    thread_id = cluster.thread_id("discard")
    assert run(RemoteGraph("fanout", client=client), {"configurable": {"thread_id": thread_id}}) == {
        **expected, "workers": client.get_state("fanout", thread_id).values["workers"],
    }
    cluster.assert_thread_sound(thread_id)


def test_recursion_limit_matches_the_local_runtime(cluster, client):
    from workers import examples

    local = examples.build_counter().compile()
    with pytest.raises(GraphRecursionError):
        local.invoke({"n": 0}, {"recursion_limit": 2})
    graph = RemoteGraph("counter", client=client)
    thread_id = cluster.thread_id("recursion")
    with pytest.raises(RunFailedError, match="Recursion limit of 2"):
        graph.invoke({"n": 0}, {"configurable": {"thread_id": thread_id}, "recursion_limit": 2})
    # The same number of steps ran as locally before the limit stopped it.
    local = examples.build_counter().compile(checkpointer=__import__("lgdist.checkpoint.memory", fromlist=["x"]).InMemorySaver())
    with pytest.raises(GraphRecursionError):
        local.invoke({"n": 0}, {"configurable": {"thread_id": "l"}, "recursion_limit": 2})
    assert client.get_state("counter", thread_id).values == local.get_state({"configurable": {"thread_id": "l"}}).values


def test_resume_of_a_thread_that_does_not_exist_is_refused_up_front(cluster, client):
    from lgdist.cli import main

    missing = cluster.thread_id("never-ran")
    with pytest.raises(ThreadNotFoundError):
        client.resume(missing, "yes")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["resume", missing, "--value", '"yes"'])
    assert code != 0
    assert out.getvalue() == ""
    assert "does not exist" in err.getvalue()
    assert client.backend.runs.get_thread(missing) is None


@pytest.mark.parametrize("bad", ["", "x" * 10_000, "nul\x00byte"])
def test_thread_ids_that_cannot_be_stored_are_refused_clearly(cluster, client, bad):
    with pytest.raises(InvalidThreadIdError):
        client.submit("counter", {"n": 0}, bad)


def test_a_rolled_back_run_drops_its_checkpoints_as_it_frees_the_thread_and_never_after(cluster, client):
    """Cancel with ``roll_back``: the checkpoints the run stored go in the
    transaction that frees the thread, so a run that claims the thread next
    keeps its own — even when the cancelled run is settled again later (a
    late duplicate of its step, the sweeper)."""
    from lgdist.distributed.run_end import settle_cancelled

    thread_id = cluster.thread_id("roll-back")
    assert cluster.wait_run(client.submit("slow", {"n": 3}, thread_id))["status"] == "success"
    before = [s.config["configurable"]["checkpoint_id"] for s in client.get_state_history("slow", thread_id)]

    rolled = client.submit("slow", {"n": 0}, thread_id)  # sleeps at n == SLOW_AT, after storing steps
    cluster.wait_for(lambda: len(client.get_state_history("slow", thread_id)) >= len(before) + 2, what="the run's first steps")
    assert client.cancel(rolled, roll_back={"after": before[0]})
    assert cluster.wait_run(rolled)["status"] == "cancelled"
    cluster.wait_for(lambda: cluster.thread_status(thread_id) == "idle", what="the thread to be freed")
    assert [s.config["configurable"]["checkpoint_id"] for s in client.get_state_history("slow", thread_id)] == before
    assert client.get_state("slow", thread_id).values["n"] == 5

    after = client.submit("slow", {"n": 3}, thread_id)
    assert cluster.wait_run(after)["status"] == "success"
    kept = [s.config["configurable"]["checkpoint_id"] for s in client.get_state_history("slow", thread_id)]
    assert len(kept) > len(before)
    assert settle_cancelled(client.backend, client.backend.runs.get_run(rolled)) is False
    assert [s.config["configurable"]["checkpoint_id"] for s in client.get_state_history("slow", thread_id)] == kept
    cluster.assert_thread_sound(thread_id)
