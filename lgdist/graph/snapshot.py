"""Reading a thread's state: a stored checkpoint as a ``StateSnapshot``,
subgraph state included."""

from __future__ import annotations

from typing import Any, Optional

from lgdist.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from lgdist.constants import NULL_TASK_ID, PULL
from lgdist.engine import apply_writes, channels_from_checkpoint, plan_next_step
from lgdist.engine.checkpoint import copy_checkpoint
from lgdist.engine.checkpoint import next_version as default_next_version
from lgdist.engine.namespace import task_namespace, with_checkpoint_map
from lgdist.engine.outcomes import task_outcome
from lgdist.engine.tasks import Task
from lgdist.loop import events as ev
from lgdist.types import PregelTask, StateSnapshot


def empty_snapshot(graph: Any, config: dict) -> StateSnapshot:
    """The state of a thread (or subgraph namespace) with no checkpoint."""
    values: Any = [] if isinstance(graph.spec.output_keys, str) else {}
    return StateSnapshot(values, (), config, None, None, None, (), ())


def subgraph_config(saved_config: dict, task: Task) -> dict:
    """Where the subgraph run by ``task`` keeps its checkpoints."""
    configurable = saved_config["configurable"]
    return {
        "configurable": {
            "thread_id": configurable.get("thread_id"),
            "checkpoint_ns": task_namespace(configurable.get("checkpoint_ns", ""), task.name, task.id),
        }
    }


def build_snapshot(
    graph: Any,
    saved: CheckpointTuple,
    *,
    saver: Optional[BaseCheckpointSaver],
    live: bool = False,
    subgraphs: bool = False,
) -> StateSnapshot:
    """``saved`` (a checkpoint of ``graph``) as a ``StateSnapshot``.

    A history entry (``live=False``) is the record of a step: the values
    it started from (plus a resume ``Command``'s update), every task of
    the step and every interrupt they raised. ``get_state`` is live: the
    values also hold what the step's finished tasks wrote, ``next`` and
    ``interrupts`` only what still has to run or be answered.

    A task that runs a subgraph has its ``state``: the config of the
    subgraph's checkpoints, or with ``subgraphs=True`` the subgraph's own
    (live) snapshot, recursively.
    """
    spec = graph.spec
    checkpoint = copy_checkpoint(saved.checkpoint)
    channels = channels_from_checkpoint(spec.channels, checkpoint)
    tasks = _planned_tasks(spec, checkpoint, channels, saved)
    by_task: dict[str, list] = {}
    for tid, chan, value in saved.pending_writes or []:
        by_task.setdefault(tid, []).append((chan, value))
    next_version = saver.get_next_version if saver else default_next_version
    null_writes = task_outcome(by_task.get(NULL_TASK_ID, [])).writes
    if null_writes:
        null_task = Task(NULL_TASK_ID, "__null__", (), None, (), None)  # type: ignore[arg-type]
        null_task.writes = null_writes
        apply_writes(checkpoint, channels, [null_task], next_version)
    keys = spec.stream_keys
    out_tasks = []
    finished: list[Task] = []
    for task in tasks:
        outcome = task_outcome(by_task.get(task.id, []))
        result = None
        if outcome.completed:
            task.writes = outcome.state_writes
            finished.append(task)
            result = _task_result(task, keys)
        # Live, a finished task's interrupts are answered.
        interrupts = () if live and outcome.completed else tuple(outcome.interrupts)
        state = _task_state(task, saved.config, saver, subgraphs)
        out_tasks.append(PregelTask(task.id, task.name, task.path, outcome.error, interrupts, state, result))
    if live and finished:
        apply_writes(checkpoint, channels, finished, next_version)
    return StateSnapshot(
        values=ev.read_values(channels, keys),
        next=tuple(t.name for t in tasks if not (live and t in finished)),
        config=with_checkpoint_map(saved.config, saved.metadata),
        metadata=saved.metadata,
        created_at=checkpoint.get("ts"),
        parent_config=with_checkpoint_map(saved.parent_config, saved.metadata),
        tasks=tuple(out_tasks),
        interrupts=tuple(i for t in out_tasks for i in t.interrupts),
    )


def _planned_tasks(spec: Any, checkpoint: dict, channels: dict, saved: CheckpointTuple) -> list[Task]:
    """The tasks of the step after ``saved``, in graph order (the order
    nodes were added, Send packets first), as LangGraph lists them; the step
    itself runs them in name order."""
    step = saved.metadata.get("step", -1) + 1
    tasks = plan_next_step(
        spec, checkpoint, channels, step,
        checkpoint_ns=saved.config["configurable"].get("checkpoint_ns", ""), read_inputs=False,
    )
    graph_order = {name: i for i, name in enumerate(spec.nodes)}
    return sorted(tasks.values(), key=lambda task: (task.path[0] == PULL, graph_order.get(task.name, 0)))


def _task_result(task: Task, keys: Any) -> Any:
    """What a finished task wrote to the state keys, as ``PregelTask.result``."""
    if isinstance(keys, str):
        return {keys: ev.task_update(task, keys) or {}}
    return ev.fold_writes((c, v) for c, v in task.writes if c in keys)


def _task_state(task: Task, saved_config: dict, saver: Optional[BaseCheckpointSaver], subgraphs: bool) -> Any:
    subgraph = task.node.subgraph if task.node is not None else None
    if subgraph is None:
        return None
    config = subgraph_config(saved_config, task)
    if not subgraphs or saver is None:
        return config
    return subgraph.state_at(saver, config, subgraphs=True)
