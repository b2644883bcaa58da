"""Turning a step's progress into stream chunks for each stream mode."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional, Sequence

from lgdist.constants import ERROR, INTERRUPT, NO_WRITES, RESUME
from lgdist.engine.channels import BaseChannel
from lgdist.engine.tasks import Task

SPECIAL = {ERROR, INTERRUPT, NO_WRITES, RESUME}


def read_values(channels: Mapping[str, BaseChannel], keys: Any) -> Any:
    """The graph's output: one root channel's value, or a dict of keys."""
    if isinstance(keys, str):
        chan = channels.get(keys)
        return chan.get() if chan is not None and chan.is_available() else None
    out = {}
    for key in keys:
        chan = channels.get(key)
        if chan is not None and chan.is_available():
            out[key] = chan.get()
    return out


def task_update(task: Task, keys: Any) -> Any:
    """A task's writes as its "updates" chunk value."""
    if isinstance(keys, str):
        values = [v for c, v in task.writes if c == keys]
        if not values:
            return None
        return values[0] if len(values) == 1 else values
    writes = [(c, v) for c, v in task.writes if c in keys]
    if not writes:
        return None
    if len({c for c, _ in writes}) < len(writes):
        # A key written more than once (a list of updates, as ToolNode
        # returns): one single-key dict per write, in write order.
        return [{c: v} for c, v in writes]
    return dict(writes)


def fold_writes(writes: Iterable[tuple[str, Any]]) -> dict:
    """Writes as a task's result: ``{channel: value}``, and for a channel
    written more than once ``{channel: {"$writes": [value, ...]}}`` (a task's
    result in the tasks/debug streams and in a snapshot's tasks)."""
    grouped: dict[str, list] = {}
    for chan, value in writes:
        grouped.setdefault(chan, []).append(value)
    return {chan: values[0] if len(values) == 1 else {"$writes": values} for chan, values in grouped.items()}


def task_result(task: Task, keys: Any) -> dict:
    interrupts = [
        {"value": i.value, "id": i.id, "response_schema": i.response_schema}
        for c, v in task.writes
        if c == INTERRUPT
        for i in v
    ]
    error = next((v for c, v in task.writes if c == ERROR), None)
    result = fold_writes(
        (c, v)
        for c, v in task.writes
        if c not in SPECIAL and ((isinstance(keys, str) and c == keys) or (not isinstance(keys, str) and c in keys))
    )
    return {"id": task.id, "name": task.name, "error": error, "result": result, "interrupts": interrupts}


def task_start(task: Task) -> dict:
    return {"id": task.id, "name": task.name, "input": task.input, "triggers": task.triggers}


def checkpoint_payload(
    config: dict,
    parent_config: Optional[dict],
    values: Any,
    metadata: dict,
    tasks: Iterable[Task],
    interrupts_by_task: Optional[Mapping[str, Sequence[Any]]] = None,
    task_states: Optional[Mapping[str, Any]] = None,
) -> dict:
    """A ``checkpoints`` chunk. ``task_states`` gives, for tasks that run a
    subgraph, the config of the subgraph's checkpoints."""
    interrupts_by_task = interrupts_by_task or {}
    task_states = task_states or {}
    tasks = [t for t in tasks]
    return {
        "config": config,
        "parent_config": parent_config,
        "values": values,
        "metadata": metadata,
        "next": [t.name for t in tasks],
        "tasks": [
            {
                "id": t.id,
                "name": t.name,
                "interrupts": tuple(interrupts_by_task.get(t.id, ())),
                "state": task_states.get(t.id),
            }
            for t in tasks
        ],
    }


def debug_event(kind: str, step: int, payload: dict) -> dict:
    return {
        "step": step,
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "type": kind,
        "payload": payload,
    }
