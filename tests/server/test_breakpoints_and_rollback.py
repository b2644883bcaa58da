"""``interrupt_after`` alone and ``runs.cancel(..., action="rollback")``
through the SDK. Each expectation is what ``langgraph dev`` answered for
the same calls on the same graphs (a five-step counter, and the same with a
slow third step), checked side by side:

* ``interrupt_after=["step"]`` stops after the first step with the node
  next, the thread ``interrupted`` and no interrupt payload; answering with
  ``None`` runs to the end and the thread is idle again.
* ``cancel(action="rollback")`` leaves the thread as it was before the run
  (its history too) and forgets the run: ``runs.get`` answers 404.
"""

from __future__ import annotations

import pytest
from langgraph_sdk.errors import NotFoundError


from cluster_machinery import wait_for  # tests/ is on the path (tests/server/conftest.py)

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(180)]


def _wait_for(predicate, timeout=60.0, what="condition"):
    return wait_for(predicate, timeout, what)


def test_interrupt_after_alone_stops_after_the_node_and_resumes(sdk):
    tid = sdk.threads.create()["thread_id"]
    assert sdk.runs.wait(tid, "counter", input={"n": 0}, interrupt_after=["step"]) == {"n": 1, "trail": [0]}
    state = sdk.threads.get_state(tid)
    assert state["next"] == ["step"] and state["interrupts"] == []
    assert sdk.threads.get(tid)["status"] == "interrupted"
    assert sdk.runs.wait(tid, "counter", input=None) == {"n": 5, "trail": [0, 1, 2, 3, 4]}
    assert sdk.threads.get_state(tid)["next"] == []
    assert sdk.threads.get(tid)["status"] == "idle"


def test_interrupt_after_stops_after_every_step_it_names(sdk):
    tid = sdk.threads.create()["thread_id"]
    for n in range(1, 5):
        out = sdk.runs.wait(tid, "counter", input={"n": 0} if n == 1 else None, interrupt_after=["step"])
        assert out["n"] == n and sdk.threads.get_state(tid)["next"] == ["step"]
    # The last step ends the graph: nothing is next, so nothing interrupts.
    assert sdk.runs.wait(tid, "counter", input=None, interrupt_after=["step"])["n"] == 5
    assert sdk.threads.get_state(tid)["next"] == [] and sdk.threads.get(tid)["status"] == "idle"


def _slow_run_in_third_step(sdk, tid, before_id=None):
    run = sdk.runs.create(tid, "slow", input={"n": 0})

    def in_slow_step():
        state = sdk.threads.get_state(tid)
        return state["checkpoint"]["checkpoint_id"] != before_id and (state["values"] or {}).get("n") == 2

    _wait_for(in_slow_step, what="the slow step")
    assert sdk.runs.get(tid, run["run_id"])["status"] == "running"
    return run


def test_cancel_rollback_of_a_threads_first_run_leaves_it_empty(sdk):
    tid = sdk.threads.create()["thread_id"]
    run = _slow_run_in_third_step(sdk, tid)
    sdk.runs.cancel(tid, run["run_id"], wait=True, action="rollback")
    state = sdk.threads.get_state(tid)
    assert state["values"] == {} and state["next"] == []
    assert sdk.threads.get_history(tid) == []
    assert sdk.threads.get(tid)["status"] == "idle"
    with pytest.raises(NotFoundError):
        sdk.runs.get(tid, run["run_id"])
    assert sdk.runs.list(tid) == []


def test_cancel_rollback_restores_the_state_before_the_run(sdk):
    tid = sdk.threads.create()["thread_id"]
    assert sdk.runs.wait(tid, "counter", input={"n": 3}) == {"n": 5, "trail": [3, 4]}
    before = sdk.threads.get_state(tid)
    history = sdk.threads.get_history(tid, limit=100)
    run = _slow_run_in_third_step(sdk, tid, before["checkpoint"]["checkpoint_id"])
    sdk.runs.cancel(tid, run["run_id"], wait=True, action="rollback")
    after = sdk.threads.get_state(tid)
    assert after["values"] == before["values"]
    assert after["checkpoint"]["checkpoint_id"] == before["checkpoint"]["checkpoint_id"]
    assert [h["checkpoint"]["checkpoint_id"] for h in sdk.threads.get_history(tid, limit=100)] == [
        h["checkpoint"]["checkpoint_id"] for h in history
    ]
    assert sdk.threads.get(tid)["status"] == "idle"
    with pytest.raises(NotFoundError):
        sdk.runs.get(tid, run["run_id"])
    assert [r["status"] for r in sdk.runs.list(tid)] == ["success"]
    # The thread goes on from there as if the run never happened.
    assert sdk.runs.wait(tid, "counter", input=None) == {"n": 5, "trail": [3, 4]}
    assert sdk.runs.wait(tid, "counter", input={"n": 4}) == {"n": 5, "trail": [3, 4, 4]}
