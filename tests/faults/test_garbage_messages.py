"""A client sending garbage: malformed, oversized and wrong-version messages
to every lgdist task, messages naming an unregistered graph, a resume for a
thread that is not interrupted, and a pickle-serialized message. Each is
rejected with a clear error, and nothing is disturbed: a paused thread
stays exactly as it was, a run in flight finishes as if nothing happened."""

from __future__ import annotations

import time
from typing import Any

import pytest
from faultlib import record

from lgdist.types import Command

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]

BIG = "x" * 1_100_000  # over the default LGDIST_MAX_PAYLOAD_BYTES (1 MB)
TICKS = {"until": 40}


def fingerprint(faults: Any, graph: str, thread_id: str) -> tuple:
    state = faults.client.get_state(graph, thread_id)
    return (
        state.values,
        state.next,
        [i.id for i in state.interrupts],
        faults.history_keys(graph, thread_id),
        faults.thread_status(thread_id),
        faults.client.backend.runs.get_thread(thread_id)["graph"],
    )


@pytest.fixture(scope="module")
def victims(faults: Any) -> dict:
    """A thread paused at an interrupt and a run in flight, whose real ids
    the garbage messages carry, so that a task acting on garbage would
    disturb them."""
    paused = faults.thread_id("paused")
    first = faults.client.submit("approval", {"request": "wire $5"}, paused)
    assert faults.wait_run(first)["status"] == "interrupted"
    snap = faults.client.get_state("approval", paused)
    busy = faults.thread_id("busy")
    busy_run = faults.client.submit("ticker", TICKS, busy)
    faults.wait_checkpoints(busy, 3)
    busy_snap = faults.client.get_state("ticker", busy)
    return {
        "paused": paused,
        "paused_run": first,
        "paused_checkpoint": snap.config["configurable"]["checkpoint_id"],
        "paused_task": snap.tasks[0].id,
        "busy": busy,
        "busy_run": busy_run,
        "busy_checkpoint": busy_snap.config["configurable"]["checkpoint_id"],
        "busy_task": busy_snap.tasks[0].id,
        "before": fingerprint(faults, "approval", paused),
        "sent": 0,
    }


def valid_payloads(v: dict) -> dict[str, dict]:
    """Well-formed messages for each task, aimed at the victims."""
    return {
        "lgdist.start": {"v": 1, "run_id": v["paused_run"]},
        "lgdist.resume": {"v": 1, "thread_id": v["paused"], "resume": "yes"},
        "lgdist.run_node": {
            "v": 1, "run_id": v["busy_run"], "thread_id": v["busy"], "graph": "ticker",
            "checkpoint_id": v["busy_checkpoint"], "task_id": v["busy_task"], "node": "tick",
        },
        "lgdist.finish_step": {
            "v": 1, "run_id": v["busy_run"], "thread_id": v["busy"], "graph": "ticker",
            "checkpoint_id": v["busy_checkpoint"],
        },
        "lgdist.sweep": {"v": 1, "older_than": 30},
    }  # fmt: skip


def garbage(task: str, valid: dict) -> list[tuple[str, dict, tuple, str]]:
    """(what, kwargs, args, the text the rejection must contain)."""
    wrong_types = {k: ({"nested": [1]} if k != "v" else 1) for k in valid}
    cases = [
        ("unknown field", {**valid, "bogus": 1}, (), "Extra inputs are not permitted"),
        ("wrong types", wrong_types, (), "Input should be a valid"),
        ("wrong version", {**valid, "v": 2}, (), "unsupported message version 2 (this worker speaks 1)"),
        ("version as text", {**valid, "v": "1"}, (), "unsupported message version '1'"),
        ("oversized", {**valid, "padding": BIG}, (), "payload larger than 1000000 bytes"),
        ("positional arguments", {}, ("garbage", 42), "positional arguments are not accepted"),
        ("positional non-dict", {}, ([1, 2, 3],), "positional arguments are not accepted"),
    ]
    if task == "lgdist.sweep":
        # Every field is optional; a sweep that calls every thread stalled is the danger.
        cases.append(("sweep everything now", {"v": 1, "older_than": 0}, (), "greater than or equal to 1"))
        cases.append(("not a number", {"v": 1, "older_than": float("nan")}, (), "finite number"))
    else:
        cases.append(("missing fields", {"v": 1}, (), "Field required"))
    return cases


TASKS = ["lgdist.start", "lgdist.resume", "lgdist.run_node", "lgdist.finish_step", "lgdist.sweep"]


@pytest.mark.fault("malformed-messages")
@pytest.mark.parametrize("task", TASKS)
def test_garbage_sent_to_every_task_is_rejected_and_disturbs_nothing(faults, celery_app, victims, task):
    valid = valid_payloads(victims)[task]
    cases = garbage(task, valid)
    started = time.monotonic()
    handles = [(what, expect, celery_app.send_task(task, args=args, kwargs=kwargs)) for what, kwargs, args, expect in cases]
    for what, expect, handle in handles:
        result = handle.get(timeout=30)
        assert result["status"] == "rejected", (what, result)
        assert result["error"].startswith(f"malformed {task} message rejected: "), (what, result)
        assert expect in result["error"], (what, result["error"])
        if task == "lgdist.resume" and "run_id" in result:
            # Aimed at a thread: the rejection shows on its runs as an error run.
            run = faults.client.get_run(result["run_id"])
            assert run["status"] == "error" and run["error"] == result["error"]
    rejected_in = time.monotonic() - started
    victims["sent"] += len(cases)

    assert fingerprint(faults, "approval", victims["paused"]) == victims["before"]
    faults.assert_thread_sound(victims["paused"])
    record("malformed-messages", runs=0, recover=rejected_in)


@pytest.mark.fault("malformed-messages")
def test_the_run_in_flight_during_the_garbage_finished_as_if_nothing_happened(faults, victims):
    assert faults.wait_run(victims["busy_run"], timeout=60)["status"] == "success"
    lost, duplicated = faults.assert_fault_free("ticker", victims["busy"], [TICKS])
    # The paused thread still resumes normally.
    resumed = faults.client.resume(victims["paused"], "fine")
    assert faults.wait_run(resumed)["status"] == "success"
    lost2, duplicated2 = faults.assert_fault_free(
        "approval", victims["paused"], [{"request": "wire $5"}, Command(resume="fine")]
    )
    assert not faults.swept(victims["busy_run"])
    record("malformed-messages", runs=2, lost=lost + lost2, duplicated=duplicated + duplicated2,
           by=f"{victims['sent']} messages to 5 tasks, each rejected by validation")  # fmt: skip


@pytest.mark.fault("unregistered-graph")
def test_messages_naming_an_unregistered_graph_are_error_runs_that_touch_no_thread(faults, celery_app):
    thread_id = faults.thread_id("nograph")
    started = time.monotonic()
    run = faults.wait_run(faults.client.submit("no-such-graph", {"n": 0}, thread_id))
    ended = time.monotonic() - started
    assert run["status"] == "error"
    assert "graph 'no-such-graph' is not registered on this worker; registered: approval" in run["error"]
    assert faults.thread_status(thread_id) != "busy"
    assert faults.checkpoint_count(thread_id) == 0  # nothing was stored
    faults.assert_thread_sound(thread_id)

    # A resume naming another graph must not re-label a paused thread.
    paused = faults.thread_id("relabel")
    assert faults.wait_run(faults.client.submit("approval", {"request": "wire $5"}, paused))["status"] == "interrupted"
    before = fingerprint(faults, "approval", paused)
    result = celery_app.send_task(
        "lgdist.resume", kwargs={"v": 1, "thread_id": paused, "graph": "no-such-graph", "resume": "yes"}
    ).get(timeout=30)
    assert result["status"] == "rejected"
    assert "names graph 'no-such-graph', but thread" in result["error"]
    assert "is not registered on this worker" in result["error"]
    assert fingerprint(faults, "approval", paused) == before
    resumed = faults.client.resume(paused, "ok")
    assert faults.wait_run(resumed)["status"] == "success"
    lost, duplicated = faults.assert_fault_free("approval", paused, [{"request": "wire $5"}, Command(resume="ok")])
    record("unregistered-graph", runs=3, lost=lost, duplicated=duplicated, recover=ended, by="error run")


@pytest.mark.fault("resume-not-interrupted")
def test_a_resume_for_a_thread_that_is_not_interrupted_is_an_error_run(faults, celery_app):
    thread_id = faults.thread_id("not-paused")
    assert faults.wait_run(faults.client.submit("counter", {"n": 3}, thread_id))["status"] == "success"
    before = fingerprint(faults, "counter", thread_id)

    started = time.monotonic()
    result = celery_app.send_task("lgdist.resume", kwargs={"v": 1, "thread_id": thread_id, "resume": "x"}).get(timeout=30)
    ended = time.monotonic() - started

    assert result["status"] == "error"
    run = faults.client.get_run(result["run_id"])
    assert run["status"] == "error"
    assert run["error"] == f"thread {thread_id!r} is not interrupted (status: idle); nothing to resume"
    assert fingerprint(faults, "counter", thread_id) == before
    lost, duplicated = faults.assert_fault_free("counter", thread_id, [{"n": 3}])
    record("resume-not-interrupted", runs=2, lost=lost, duplicated=duplicated, recover=ended, by="error run")


@pytest.mark.fault("pickle-message")
def test_a_pickle_serialized_resume_is_refused_by_the_workers(faults, celery_app):
    thread_id = faults.thread_id("pickle")
    assert faults.wait_run(faults.client.submit("approval", {"request": "wire $5"}, thread_id))["status"] == "interrupted"
    before = fingerprint(faults, "approval", thread_id)
    runs_before = faults.client.runs(thread_id)
    logs_at = {w.name: w.log_size() for w in faults.workers}

    sent = time.monotonic()
    celery_app.send_task(
        "lgdist.resume", kwargs={"v": 1, "thread_id": thread_id, "resume": "yes"}, serializer="pickle"
    )

    def refusal() -> str:
        return "".join(w.log_since(logs_at.get(w.name, 0)) for w in faults.workers)

    faults.wait_for(
        lambda: "Refusing to deserialize untrusted content of type pickle" in refusal(),
        timeout=20, what="a worker to refuse the pickle message",
    )  # fmt: skip
    refused = time.monotonic() - sent
    assert "application/x-python-serialize" in refusal()
    # A valid message sent after it has been answered: the workers have
    # taken everything queued before it, so the pickle resume had its chance.
    marker = celery_app.send_task("lgdist.resume", kwargs={"v": 1, "thread_id": faults.thread_id("marker")})
    assert marker.get(timeout=30)["status"] == "rejected"
    assert faults.client.runs(thread_id) == runs_before, "the task ran: it created a run"
    assert fingerprint(faults, "approval", thread_id) == before
    lost, duplicated = faults.assert_fault_free("approval", thread_id, [{"request": "wire $5"}])
    record("pickle-message", runs=1, lost=lost, duplicated=duplicated, recover=refused,
           by="accept_content=['json'] refuses it")  # fmt: skip
