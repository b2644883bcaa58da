"""Runs over the SDK: background create + join, join-stream, list/get,
cancel, stream modes, stateless runs, every multitask strategy on a busy
thread, and failed runs."""

from __future__ import annotations

import pytest
from langgraph_sdk.errors import ConflictError


from cluster_machinery import wait_for  # tests/ is on the path (tests/server/conftest.py)

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(180)]


def _wait_for(predicate, timeout=60.0, what="condition"):
    return wait_for(predicate, timeout, what)


def _busy_at_slow_step(sdk, tid, input=None):
    """Start the slow graph (its third step sleeps) and wait until it is in
    that step."""
    run = sdk.runs.create(tid, "slow", input=input or {"n": 0})
    _wait_for(lambda: sdk.threads.get_state(tid)["values"].get("n") == 2, what="the slow step")
    assert sdk.threads.get(tid)["status"] == "busy"
    return run


def test_background_run_join_get_list(sdk):
    tid = sdk.threads.create()["thread_id"]
    run = sdk.runs.create(tid, "counter", input={"n": 0}, metadata={"purpose": "join"})
    assert run["status"] in ("pending", "running") and run["thread_id"] == tid
    assert sdk.runs.join(tid, run["run_id"]) == {"n": 5, "trail": [0, 1, 2, 3, 4]}
    got = sdk.runs.get(tid, run["run_id"])
    assert got["status"] == "success" and got["metadata"] == {"purpose": "join"}
    assert [r["run_id"] for r in sdk.runs.list(tid)] == [run["run_id"]]
    assert sdk.runs.list(tid, status="error") == []
    parts = list(sdk.runs.join_stream(tid, run["run_id"]))
    assert [p.data for p in parts if p.event == "values"][-1] == {"n": 5, "trail": [0, 1, 2, 3, 4]}
    sdk.runs.delete(tid, run["run_id"])
    assert sdk.runs.list(tid) == []


def test_stream_modes(sdk):
    tid = sdk.threads.create()["thread_id"]
    modes = ["values", "updates", "debug", "tasks", "checkpoints", "custom", "messages-tuple", "events"]
    parts = list(sdk.runs.stream(tid, "counter", input={"n": 3}, stream_mode=modes, stream_subgraphs=True))
    events = [p.event for p in parts]
    assert events[0] == "metadata"
    for mode in ("values", "updates", "debug", "tasks", "checkpoints", "events"):
        assert mode in events, (mode, events)
    assert [p.data for p in parts if p.event == "updates"] == [{"step": {"n": 4, "trail": [3]}}, {"step": {"n": 5, "trail": [4]}}]
    tasks = [p.data for p in parts if p.event == "tasks"]
    assert {t["name"] for t in tasks} == {"step"}
    assert [p.data["metadata"]["step"] for p in parts if p.event == "checkpoints"] == [-1, 0, 1, 2]


def test_messages_tuple_stream(sdk):
    tid = sdk.threads.create()["thread_id"]
    question = [{"role": "user", "content": "what is the weather in sf currently"}]
    parts = list(sdk.runs.stream(tid, "support-agent", input=question, stream_mode="messages-tuple"))
    messages = [p.data for p in parts if p.event == "messages"]
    assert messages, [p.event for p in parts]
    message, meta = messages[0]
    assert message["type"] in ("ai", "AIMessageChunk") and meta["langgraph_node"] == "agent"


def test_command_goto_and_update_equal_local(sdk):
    from lgdist.checkpoint.memory import InMemorySaver
    from lgdist.types import Command
    from workers import examples

    local = examples.build_counter().compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "local"}}
    local.invoke({"n": 0}, cfg)
    want = local.invoke(Command(goto="step", update={"n": 3}), cfg)

    tid = sdk.threads.create()["thread_id"]
    sdk.runs.wait(tid, "counter", input={"n": 0})
    got = sdk.runs.wait(tid, "counter", command={"goto": "step", "update": {"n": 3}})
    assert got == want == {"n": 5, "trail": [0, 1, 2, 3, 4, 3, 4]}
    got = sdk.runs.wait(tid, "counter", command={"goto": ["step"], "update": [["n", 4]]})
    assert got == local.invoke(Command(goto=["step"], update=[("n", 4)]), cfg)


def test_stateless_runs(sdk):
    assert sdk.runs.wait(None, "counter", input={"n": 1}) == {"n": 5, "trail": [1, 2, 3, 4]}
    parts = list(sdk.runs.stream(None, "counter", input={"n": 4}, stream_mode="values"))
    assert [p.data for p in parts if p.event == "values"] == [{"n": 4, "trail": []}, {"n": 5, "trail": [4]}]
    batch = sdk.runs.create_batch([{"assistant_id": "counter", "input": {"n": n}} for n in (2, 3)])
    assert [sdk.runs.join(r["thread_id"], r["run_id"])["trail"] for r in batch] == [[2, 3, 4], [3, 4]]
    background = sdk.runs.create(None, "counter", input={"n": 4})
    assert sdk.runs.join(background["thread_id"], background["run_id"]) == {"n": 5, "trail": [4]}


def test_failed_run(sdk):
    tid = sdk.threads.create()["thread_id"]
    parts = list(sdk.runs.stream(tid, "failing", input={"n": 0}))
    errors = [p.data for p in parts if p.event == "error"]
    assert errors and "failed on purpose" in errors[0]["message"] and errors[0]["error"] == "ValueError"
    with pytest.raises(Exception, match="failed on purpose"):
        sdk.runs.wait(tid, "failing", input={"n": 0})
    assert sdk.threads.get(tid)["status"] == "error"
    assert {r["status"] for r in sdk.runs.list(tid)} == {"error"}


def test_cancel_a_running_run(sdk):
    tid = sdk.threads.create()["thread_id"]
    run = _busy_at_slow_step(sdk, tid)
    sdk.runs.cancel(tid, run["run_id"], wait=True)
    assert sdk.runs.get(tid, run["run_id"])["status"] == "interrupted"
    _wait_for(lambda: sdk.threads.get(tid)["status"] != "busy", what="the thread to be released")
    # The step in flight (if its node had started) completes; nothing after
    # it runs. A next step is still pending, so the thread rests resumable
    # ("interrupted", as LangGraph Server reports a thread whose state has a
    # next step).
    assert sdk.threads.get(tid)["status"] == "interrupted"
    assert sdk.threads.get_state(tid)["values"]["n"] in (2, 3)
    assert sdk.threads.get_history(tid, limit=1)[0]["metadata"]["step"] == 2


def test_cancel_many_by_thread(sdk):
    tid = sdk.threads.create()["thread_id"]
    run = _busy_at_slow_step(sdk, tid)
    sdk.runs.cancel_many(thread_id=tid)
    _wait_for(lambda: sdk.runs.get(tid, run["run_id"])["status"] == "interrupted", what="the run to be cancelled")


def test_reject_on_a_busy_thread(sdk):
    tid = sdk.threads.create()["thread_id"]
    run = _busy_at_slow_step(sdk, tid)
    with pytest.raises(ConflictError):
        sdk.runs.create(tid, "slow", input={"n": 0}, multitask_strategy="reject")
    assert sdk.runs.join(tid, run["run_id"])["n"] == 5


def test_enqueue_on_a_busy_thread(sdk):
    tid = sdk.threads.create()["thread_id"]
    first = _busy_at_slow_step(sdk, tid)
    second = sdk.runs.create(tid, "counter", input={"n": 3}, multitask_strategy="enqueue")
    assert sdk.runs.get(tid, second["run_id"])["status"] == "pending"
    result = sdk.runs.join(tid, second["run_id"])
    assert sdk.runs.get(tid, first["run_id"])["status"] == "success"
    # The queued run went on from the first run's final state.
    assert result == {"n": 5, "trail": [0, 1, 2, 3, 4, 3, 4]}


def test_interrupt_keeps_the_active_runs_progress(sdk):
    tid = sdk.threads.create()["thread_id"]
    first = _busy_at_slow_step(sdk, tid)
    second = sdk.runs.create(tid, "slow", input={"n": 3}, multitask_strategy="interrupt")
    result = sdk.runs.join(tid, second["run_id"])
    assert sdk.runs.get(tid, first["run_id"])["status"] == "interrupted"
    # The first run's finished steps stay; the step it was in when it was
    # interrupted is not stored, and the new input goes on from there.
    assert result == {"n": 5, "trail": [0, 1, 3, 4]}


def test_rollback_discards_the_active_runs_progress(sdk):
    tid = sdk.threads.create()["thread_id"]
    sdk.runs.wait(tid, "slow", input={"n": 4})  # some history before the run rolled back
    first = _busy_at_slow_step(sdk, tid, input={"n": 0})
    second = sdk.runs.create(tid, "slow", input={"n": 3}, multitask_strategy="rollback")
    result = sdk.runs.join(tid, second["run_id"])
    assert sdk.runs.get(tid, first["run_id"])["status"] == "interrupted"
    assert result == {"n": 5, "trail": [4, 3, 4]}  # nothing of the first run


def test_on_disconnect_cancel(sdk):
    tid = sdk.threads.create()["thread_id"]
    stream = sdk.runs.stream(tid, "slow", input={"n": 0}, stream_mode="values", on_disconnect="cancel")
    first = next(stream)
    assert first.event == "metadata"
    run_id = first.data["run_id"]
    _wait_for(lambda: sdk.threads.get_state(tid)["values"].get("n") == 2, what="the slow step")
    stream.close()
    _wait_for(lambda: sdk.runs.get(tid, run_id)["status"] == "interrupted", what="the run to be cancelled")


def test_durability_goes_with_the_run_and_every_mode_stores_the_same_history(sdk, server):
    """The body's ``durability`` reaches the workers (the API's default is
    LangGraph's "async"); a slice stores the same checkpoints in each mode."""
    histories = {}
    for mode in ("sync", "async", "exit", None):
        tid = sdk.threads.create()["thread_id"]
        assert sdk.runs.wait(tid, "counter", input={"n": 1}, durability=mode) == {"n": 5, "trail": [1, 2, 3, 4]}
        (run,) = sdk.runs.list(tid)
        stored = server.cluster.client.backend.runs.get_run(run["run_id"])
        assert stored.options["durability"] == (mode or "async")
        histories[mode] = [(h["metadata"]["step"], h["values"], h["next"]) for h in sdk.threads.get_history(tid, limit=100)]
    assert histories["sync"] == histories["async"] == histories["exit"] == histories[None]
    assert [step for step, _, _ in histories["async"]] == [4, 3, 2, 1, 0, -1]
