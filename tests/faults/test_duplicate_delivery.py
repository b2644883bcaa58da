"""At-least-once delivery with real concurrency: a run_node delivered a
second time while the first delivery is still running it, finish_step
executed three times at once for the same step, and two resumes racing
for one interrupted thread."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from faultlib import record

from lgdist.checkpoint.sql import writes_table
from lgdist.distributed.coordinator import WORKER_MODE
from lgdist.distributed.messages import FinishStepMessage, RunNodeMessage
from lgdist.types import Command

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]

SLOW_INPUT = {"n": 0}


def _slow_step(faults: Any, thread_id: str) -> Any:
    """The snapshot whose step is the slow node, once the node is running."""
    faults.wait_for(lambda: faults.pid_file.exists() and faults.pid_file.read_text().strip(), timeout=30,
                    what="the slow node to start")  # fmt: skip
    (snap,) = [s for s in faults.history("slow", thread_id) if s.next == ("step",) and s.values.get("n") == 2]
    return snap


def _worker_events(faults: Any, run_id: str) -> Counter:
    """How often each (task id, status) was reported by a node task."""
    return Counter((c["task_id"], c["status"]) for m, c in faults.client.events(run_id, timeout=10) if m == WORKER_MODE)


@pytest.mark.fault("run-node-twice")
def test_run_node_delivered_again_while_it_runs_stores_one_outcome(faults, celery_app):
    faults.pid_file.unlink(missing_ok=True)
    thread_id = faults.thread_id("node-twice")
    run_id = faults.client.submit("slow", SLOW_INPUT, thread_id)
    snap = _slow_step(faults, thread_id)
    first_pid = int(faults.pid_file.read_text())
    (task,) = snap.tasks
    checkpoint_id = snap.config["configurable"]["checkpoint_id"]
    kwargs = RunNodeMessage(
        run_id=run_id, thread_id=thread_id, graph="slow", checkpoint_id=checkpoint_id, task_id=task.id, node=task.name
    ).model_dump()

    # The same message, same task id, while the first delivery still sleeps in the node.
    duplicate = celery_app.send_task("lgdist.run_node", kwargs=kwargs, task_id=f"{checkpoint_id}.{task.id}")
    result = duplicate.get(timeout=30)
    assert result["status"] == "ok", result  # it really ran the node a second time, concurrently
    assert int(faults.pid_file.read_text()) != first_pid

    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    lost, duplicated = faults.assert_fault_free("slow", thread_id, [SLOW_INPUT])
    assert not faults.swept(run_id)
    record("run-node-twice", runs=1, lost=lost, duplicated=duplicated, recover=None,
           by="writes keyed by (checkpoint, task), insert-once")  # fmt: skip


@pytest.mark.fault("finish-step-twice")
def test_finish_step_executed_three_times_at_once_stores_and_schedules_one_step(faults, celery_app):
    """When the slow node's writes land, two extra finish_step messages for
    that step race its finish: one stores the next checkpoint, the others
    find it stored, and the step marker lets only one of them send the
    following step (no node after it runs twice). The slow step has one
    task, so its run_node finishes it (writes and checkpoint land in one
    transaction) and may run the remaining steps inline: the extra messages
    then find the step stored, or the run already over."""
    faults.pid_file.unlink(missing_ok=True)
    thread_id = faults.thread_id("finish-twice")
    run_id = faults.client.submit("slow", SLOW_INPUT, thread_id)
    snap = _slow_step(faults, thread_id)
    checkpoint_id = snap.config["configurable"]["checkpoint_id"]
    kwargs = FinishStepMessage(run_id=run_id, thread_id=thread_id, graph="slow", checkpoint_id=checkpoint_id).model_dump()

    def writes_landed() -> bool:
        with faults.client.backend.saver.engine.connect() as conn:
            return bool(conn.execute(
                sa.select(sa.func.count()).select_from(writes_table).where(
                    writes_table.c.thread_id == thread_id, writes_table.c.checkpoint_id == checkpoint_id)
            ).scalar_one())  # fmt: skip

    faults.wait_for(writes_landed, timeout=30, what="the slow node's writes")
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(celery_app.send_task, "lgdist.finish_step", kwargs=kwargs) for _ in range(2)]
        results = [f.result().get(timeout=30) for f in futures]
    assert all(r["status"] == "ok" for r in results), results

    assert faults.wait_run(run_id, timeout=60)["status"] == "success"
    lost, duplicated = faults.assert_fault_free("slow", thread_id, [SLOW_INPUT])
    events = _worker_events(faults, run_id)
    ran = Counter(task_id for (task_id, status) in events if status == "ok")
    assert set(ran.values()) == {1}, f"a node ran more than once: {ran}"
    assert sum(events.values()) == len(ran), f"a step was scheduled twice: {events}"
    assert all(r["outcome"] in ("stored before", "ignored: run is success") for r in results), results
    assert not faults.swept(run_id)
    record("finish-step-twice", runs=1, lost=lost, duplicated=duplicated, recover=None,
           by="checkpoint insert-once + step marker")  # fmt: skip


@pytest.mark.fault("racing-resumes")
def test_two_resumes_racing_on_one_thread_one_wins_the_other_is_an_error_run(faults, celery_app):
    thread_id = faults.thread_id("race")
    first = faults.client.submit("approval", {"request": "wire $5"}, thread_id)
    assert faults.wait_run(first)["status"] == "interrupted"

    messages = [{"v": 1, "thread_id": thread_id, "resume": answer} for answer in ("yes", "no")]
    with ThreadPoolExecutor(2) as pool:
        handles = list(pool.map(lambda kw: celery_app.send_task("lgdist.resume", kwargs=kw), messages))
    results = [h.get(timeout=30) for h in handles]

    statuses = sorted(r["status"] for r in results)
    assert statuses == ["error", "started"], results
    (winner,) = [m["resume"] for m, r in zip(messages, results) if r["status"] == "started"]
    (loser,) = [r for r in results if r["status"] == "error"]
    assert faults.wait_run(next(r["run_id"] for r in results if r["status"] == "started"))["status"] == "success"
    lost_run = faults.client.get_run(loser["run_id"])
    assert lost_run["status"] == "error"
    assert f"thread {thread_id!r} is not interrupted" in lost_run["error"]
    lost, duplicated = faults.assert_fault_free(
        "approval", thread_id, [{"request": "wire $5"}, Command(resume=winner)]
    )
    assert faults.client.get_state("approval", thread_id).values["log"] == ["asked", f"acted:{winner}"]
    record("racing-resumes", runs=3, lost=lost, duplicated=duplicated, recover=None,
           by="atomic thread claim")  # fmt: skip
