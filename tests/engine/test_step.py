"""The step algebra on a hand-built graph: planning, applying writes in a
deterministic order, static breakpoints. No runtime, no store."""

import operator
from typing import Any

import pytest

from lgdist.constants import PULL, PUSH, TASKS
from lgdist.engine import (
    GraphSpec,
    NodeSpec,
    Task,
    apply_writes,
    channels_from_checkpoint,
    create_checkpoint,
    empty_checkpoint,
    mark_resumed,
    plan_next_step,
    should_interrupt,
)
from lgdist.engine.channels import BinaryOperatorAggregate, EphemeralValue, LastValue, Topic
from lgdist.errors import InvalidUpdateError
from lgdist.types import Send


def _version(current: Any) -> str:
    n = int(str(current).split(".")[0]) if current is not None else 0
    return f"{n + 1:032}.0"


def _node(name: str, *triggers: str, hidden: bool = False) -> NodeSpec:
    return NodeSpec(
        name=name,
        bound=None,
        triggers=triggers or (f"to:{name}",),
        read_input=lambda chans: chans["log"].get(),
        write_output=lambda output, read_fresh: [],
        hidden=hidden,
    )


def _graph() -> GraphSpec:
    """Three nodes: "a" and "b" triggered by their own edge channels, "c"
    by "a"'s or "b"'s; a reducer key "log" and a last-value key "last"."""
    channels = {
        "log": BinaryOperatorAggregate(list, operator.add, key="log"),
        "last": LastValue(str, key="last"),
        TASKS: Topic(Send, key=TASKS),
        "to:a": EphemeralValue(Any, guard=False),
        "to:b": EphemeralValue(Any, guard=False),
        "to:c": EphemeralValue(Any, guard=False),
    }
    nodes = {"b": _node("b"), "a": _node("a"), "c": _node("c")}
    return GraphSpec(channels=channels, nodes=nodes, input_channel="to:a", output_keys=["log"], stream_keys=["log"])


def _start(spec: GraphSpec, *writes: tuple[str, Any]) -> tuple[dict, dict]:
    """A checkpoint and channels after writing ``writes`` as graph input."""
    checkpoint = empty_checkpoint()
    channels = channels_from_checkpoint(spec.channels, checkpoint)
    _input(checkpoint, channels, list(writes))
    return checkpoint, channels


def _input(checkpoint: dict, channels: dict, writes: list) -> set:
    task = Task("", "__input__", (), None, (), None)  # type: ignore[arg-type]
    task.writes = writes
    updated = apply_writes(checkpoint, channels, [task], _version)
    checkpoint["updated_channels"] = sorted(set(checkpoint.get("updated_channels") or ()) | updated)
    return updated


def _ran(task: Task, *writes: tuple[str, Any]) -> Task:
    task.writes = list(writes)
    return task


# -- planning ---------------------------------------------------------------------

def test_nothing_is_planned_on_an_empty_checkpoint():
    spec = _graph()
    checkpoint = empty_checkpoint()
    assert plan_next_step(spec, checkpoint, channels_from_checkpoint(spec.channels, checkpoint), 0) == {}


def test_a_node_is_planned_when_its_trigger_has_a_version_it_has_not_seen():
    spec = _graph()
    checkpoint, channels = _start(spec, ("to:a", None), ("log", ["x"]))
    tasks = list(plan_next_step(spec, checkpoint, channels, 0).values())
    assert [(t.name, t.path, t.triggers, t.input) for t in tasks] == [("a", (PULL, "a"), ("to:a",), ["x"])]


def test_task_ids_are_deterministic_and_tied_to_the_checkpoint_and_step():
    spec = _graph()
    checkpoint, channels = _start(spec, ("to:a", None))
    first = list(plan_next_step(spec, checkpoint, channels, 0))
    assert first == list(plan_next_step(spec, checkpoint, channels, 0))
    assert first != list(plan_next_step(spec, checkpoint, channels, 1))
    other = dict(checkpoint, id="another-checkpoint")
    assert first != list(plan_next_step(spec, other, channels, 0))


def test_a_node_that_saw_the_version_is_not_planned_again():
    spec = _graph()
    checkpoint, channels = _start(spec, ("to:a", None))
    tasks = list(plan_next_step(spec, checkpoint, channels, 0).values())
    apply_writes(checkpoint, channels, [_ran(tasks[0], ("log", ["a"]))], _version)
    assert plan_next_step(spec, checkpoint, channels, 1) == {}


def test_pull_tasks_are_planned_in_name_order_and_push_tasks_first_in_send_order():
    spec = _graph()
    checkpoint, channels = _start(
        spec, ("to:b", None), ("to:a", None), (TASKS, Send("c", "first")), (TASKS, Send("b", "second"))
    )
    tasks = list(plan_next_step(spec, checkpoint, channels, 0).values())
    assert [(t.name, t.path, t.input) for t in tasks] == [
        ("c", (PUSH, 0), "first"),
        ("b", (PUSH, 1), "second"),
        ("a", (PULL, "a"), []),
        ("b", (PULL, "b"), []),
    ]
    assert tasks[0].triggers == (PUSH,)


def test_a_send_to_an_unknown_node_is_an_invalid_update():
    spec = _graph()
    checkpoint, channels = _start(spec, (TASKS, Send("ghost", 1)))
    with pytest.raises(InvalidUpdateError, match="ghost"):
        plan_next_step(spec, checkpoint, channels, 0)


def test_only_nodes_listening_to_updated_channels_are_candidates():
    spec = _graph()
    checkpoint, channels = _start(spec, ("to:a", None), ("to:b", None))
    checkpoint["updated_channels"] = ["to:b"]
    assert [t.name for t in plan_next_step(spec, checkpoint, channels, 0).values()] == ["b"]


# -- applying writes ------------------------------------------------------------------

def test_reducer_writes_are_folded_in_task_order_not_completion_order():
    spec = _graph()
    checkpoint, channels = _start(spec, ("to:a", None), ("to:b", None), (TASKS, Send("c", 0)), (TASKS, Send("c", 1)))
    tasks = {(t.name, t.path[1]): t for t in plan_next_step(spec, checkpoint, channels, 0).values()}
    finished = [  # the order they happened to finish in
        _ran(tasks[("c", 1)], ("log", ["push 1"])),
        _ran(tasks[("b", "b")], ("log", ["b"])),
        _ran(tasks[("c", 0)], ("log", ["push 0"])),
        _ran(tasks[("a", "a")], ("log", ["a"])),
    ]
    apply_writes(checkpoint, channels, finished, _version)
    # Pull tasks by node name, then Send packets in send order.
    assert channels["log"].get() == ["a", "b", "push 0", "push 1"]


def test_two_tasks_writing_a_last_value_key_conflict():
    spec = _graph()
    checkpoint, channels = _start(spec, ("to:a", None), ("to:b", None))
    a, b = plan_next_step(spec, checkpoint, channels, 0).values()
    with pytest.raises(InvalidUpdateError, match="At key 'last'"):
        apply_writes(checkpoint, channels, [_ran(a, ("last", "a")), _ran(b, ("last", "b"))], _version)


def test_apply_writes_records_what_tasks_saw_and_bumps_only_changed_channels():
    spec = _graph()
    checkpoint, channels = _start(spec, ("to:a", None))
    before = dict(checkpoint["channel_versions"])
    (task,) = plan_next_step(spec, checkpoint, channels, 0).values()
    updated = apply_writes(checkpoint, channels, [_ran(task, ("log", ["a"]), ("to:c", None))], _version)
    assert updated == {"log", "to:c", "to:a"}  # to:a cleared: it was consumed this step
    assert checkpoint["versions_seen"]["a"] == {"to:a": before["to:a"]}
    assert all(checkpoint["channel_versions"][c] > before.get(c, "") for c in updated)
    assert set(checkpoint["channel_versions"]) == set(before) | {"log", "to:c"}


def test_writes_without_a_triggered_task_do_not_clear_pending_triggers():
    # A resume Command's update lands on the current step: the edge that
    # triggers the next node must survive it.
    spec = _graph()
    checkpoint, channels = _start(spec, ("to:a", None))
    _input(checkpoint, channels, [("log", ["update"])])
    assert channels["to:a"].is_available()
    assert [t.name for t in plan_next_step(spec, checkpoint, channels, 0).values()] == ["a"]


def test_a_checkpoint_round_trip_keeps_the_planned_step():
    spec = _graph()
    checkpoint, channels = _start(spec, ("to:b", None), ("log", ["x"]))
    saved = create_checkpoint(checkpoint, channels, updated_channels=set(checkpoint["updated_channels"]))
    restored = channels_from_checkpoint(spec.channels, saved)
    planned = plan_next_step(spec, saved, restored, 0)
    assert [(t.name, t.input) for t in planned.values()] == [("b", ["x"])]


# -- breakpoints -------------------------------------------------------------------

def test_breakpoint_fires_for_named_nodes_only():
    spec = _graph()
    checkpoint, channels = _start(spec, ("to:a", None), ("to:b", None))
    tasks = list(plan_next_step(spec, checkpoint, channels, 0).values())
    assert [t.name for t in should_interrupt(checkpoint, ["b"], tasks)] == ["b"]
    assert should_interrupt(checkpoint, ["c"], tasks) == []
    assert [t.name for t in should_interrupt(checkpoint, "*", tasks)] == ["a", "b"]


def test_breakpoint_does_not_fire_again_after_resuming_until_something_changes():
    spec = _graph()
    checkpoint, channels = _start(spec, ("to:a", None))
    tasks = list(plan_next_step(spec, checkpoint, channels, 0).values())
    assert should_interrupt(checkpoint, ["a"], tasks)
    mark_resumed(checkpoint)
    assert should_interrupt(checkpoint, ["a"], tasks) == []
    apply_writes(checkpoint, channels, [_ran(tasks[0], ("to:a", None))], _version)
    assert should_interrupt(checkpoint, ["a"], list(plan_next_step(spec, checkpoint, channels, 1).values()))


def test_hidden_tasks_never_hit_a_breakpoint():
    spec = _graph()
    spec.nodes["a"] = _node("a", hidden=True)
    checkpoint, channels = _start(spec, ("to:a", None))
    tasks = list(plan_next_step(spec, checkpoint, channels, 0).values())
    assert should_interrupt(checkpoint, "*", tasks) == []
