"""The pure parts of subgraph support: checkpoint namespaces, how a resume
answer reaches an interrupt() inside a subgraph, how a resume is stored."""

import pytest

from lgdist.engine.channels import MISSING
from lgdist.engine.ids import interrupt_id
from lgdist.engine.namespace import (
    graph_namespace_of_task,
    namespace_tuple,
    recast_namespace,
    task_namespace,
    with_checkpoint_map,
)
from lgdist.engine.resume import pack_resume_map, unpack_resume
from lgdist.engine.task_context import TaskContext
from lgdist.errors import GraphInterrupt


def _ctx(task_id: str = "t1", ns: str = "sub:t1", **kwargs) -> TaskContext:
    return TaskContext(task_id=task_id, node=ns.split("|")[-1].split(":")[0], checkpoint_ns=ns, config={}, **kwargs)


def test_task_namespace_nests_under_the_graph_namespace():
    assert task_namespace("", "sub", "t1") == "sub:t1"
    assert task_namespace("sub:t1", "inner", "t2") == "sub:t1|inner:t2"


def test_namespace_tuple_and_recast():
    assert namespace_tuple("") == ()
    assert namespace_tuple("a:1|b:2") == ("a:1", "b:2")
    assert recast_namespace("a:1|b:2") == "a|b"
    assert recast_namespace("") == ""
    assert graph_namespace_of_task("a:1|b:2") == ("a:1",)
    assert graph_namespace_of_task("a:1") == ()


def test_checkpoint_map_only_for_subgraph_checkpoints():
    root = {"configurable": {"thread_id": "x", "checkpoint_ns": "", "checkpoint_id": "c0"}}
    assert with_checkpoint_map(root, {"parents": {}}) is root
    sub = {"configurable": {"thread_id": "x", "checkpoint_ns": "s:1", "checkpoint_id": "c2"}}
    assert with_checkpoint_map(sub, {"parents": {"": "c0"}})["configurable"]["checkpoint_map"] == {
        "": "c0",
        "s:1": "c2",
    }
    assert with_checkpoint_map(None, {"parents": {"": "c0"}}) is None


def test_resume_map_is_never_confused_with_a_dict_answer():
    assert unpack_resume({"a": 1}) == ({"a": 1}, {})
    assert unpack_resume(pack_resume_map({"id1": "yes"})) == (MISSING, {"id1": "yes"})


def test_interrupt_without_answer_raises_with_a_stable_id():
    ctx = _ctx()
    with pytest.raises(GraphInterrupt) as raised:
        ctx.interrupt("q?")
    (interrupt,) = raised.value.interrupts
    assert interrupt.value == "q?"
    assert interrupt.id == interrupt_id("sub:t1", "t1", 0)


def test_answer_by_id_reaches_the_interrupt_with_that_id_only():
    wanted = interrupt_id("sub:t1", "t1", 0)
    ctx = _ctx(resume_map={wanted: "yes"})
    assert ctx.interrupt("q?") == "yes"
    assert ctx.resume_write() == ("__resume__", ["yes"])
    with pytest.raises(GraphInterrupt):
        ctx.interrupt("second?")  # its id is not in the map


def test_subgraph_task_takes_the_unassigned_answer_from_its_parent_once():
    parent = _ctx("p", "sub:p", unassigned_resume="answer")
    child = _ctx("c", "sub:p|ask:c", parent=parent)
    sibling = _ctx("s", "sub:p|other:s", parent=parent)
    assert child.interrupt("q?") == "answer"
    # Consumed for the whole chain: neither the parent's own interrupt()
    # nor another task of the subgraph gets it again.
    with pytest.raises(GraphInterrupt):
        parent.interrupt("parent q?")
    with pytest.raises(GraphInterrupt):
        sibling.interrupt("sibling q?")


def test_parent_consuming_first_leaves_nothing_for_the_subgraph():
    parent = _ctx("p", "fn:p", unassigned_resume="answer")
    assert parent.interrupt("mine?") == "answer"
    child = _ctx("c", "fn:p|ask:c", parent=parent)
    with pytest.raises(GraphInterrupt):
        child.interrupt("q?")


def test_recorded_answers_replay_before_new_ones():
    ctx = _ctx(resume=["first"], unassigned_resume="second")
    assert ctx.interrupt("1?") == "first"
    assert ctx.interrupt("2?") == "second"
    assert ctx.resume_write() == ("__resume__", ["first", "second"])
