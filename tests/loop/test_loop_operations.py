"""The loop operations the Celery workers use, on the memory store."""

import operator
from typing import Annotated, TypedDict

import pytest

from lgdist.checkpoint.memory import InMemorySaver
from lgdist.graph import END, START, StateGraph
from lgdist.loop import StepAlreadyFinished, ThreadLoop
from lgdist.types import Send


class State(TypedDict):
    items: Annotated[list, operator.add]


def _fanout_graph(reads: list):
    def fan(state: State):
        return [Send("work", {"items": [i]}) for i in range(3)]

    def work(state: State):
        return {"items": [state["items"][0] * 10]}

    def after(state: State):
        return {"items": ["done"]}

    builder = StateGraph(State)
    builder.add_node("work", work)
    builder.add_node("after", after)
    builder.add_conditional_edges(START, fan)
    builder.add_edge("work", "after")
    builder.add_edge("after", END)
    return builder.compile()


def _run(loop, tasks):
    from lgdist.engine.execute import make_fresh_reader, run_task
    from lgdist.loop.task_run import prepare_task

    for task in tasks:
        config, ctx = prepare_task(loop, task, None, None, None)
        run_task(task, config, ctx, make_fresh_reader(loop.channels))


def _step(loop, key=None):
    tasks = loop.plan()
    _run(loop, tasks)
    for task in tasks:
        loop.record(task)
    loop.finish(idempotency_key=key)
    return tasks


def _loop(saver, thread="t1"):
    graph = _fanout_graph([])
    return ThreadLoop(graph.get_graph_spec(), {"configurable": {"thread_id": thread}}, saver=saver)


def test_plan_task_reads_only_that_tasks_input(monkeypatch):
    saver = InMemorySaver()
    loop = _loop(saver)
    loop.load({"items": []})
    _step(loop)  # __start__
    assert [t.name for t in _step(loop)] == ["work"] * 3
    reads = []
    node = loop.spec.nodes["after"]
    original = node.read_input
    monkeypatch.setattr(node, "read_input", lambda channels: reads.append(1) or original(channels))
    planned = loop.plan()  # reads the input of every task it returns
    assert len(planned) == 1 and len(reads) == 1
    reads.clear()
    task = loop.plan_task(planned[0].id)
    assert task is not None and sorted(task.input["items"]) == [0, 10, 20] and len(reads) == 1
    reads.clear()
    missing, failed = loop.collect()
    assert [t.name for t in missing] == ["after"] and not failed and reads == []
    assert loop.plan_task("no-such-task") is None


def test_finish_stores_once_per_idempotency_key():
    saver = InMemorySaver()
    first, second = _loop(saver), _loop(saver)
    first.load({"items": []})
    second.restore()
    tasks = first.plan()
    _run(first, tasks)
    for task in tasks:
        first.record(task)
    key = f"step:{first.checkpoint['id']}"
    first.finish(idempotency_key=key)
    second.collect()
    with pytest.raises(StepAlreadyFinished):
        second.finish(idempotency_key=key)
    assert len(list(saver.list({"configurable": {"thread_id": "t1"}}))) == 2
    assert not hasattr(first, "step_key")


def test_record_without_saving_leaves_no_pending_write():
    saver = InMemorySaver()
    loop = _loop(saver)
    loop.load({"items": []})
    task = loop.plan()[0]
    _run(loop, [task])
    loop.record(task, save=False)
    assert saver.get_tuple({"configurable": {"thread_id": "t1"}}).pending_writes == []
