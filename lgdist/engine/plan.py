"""Plan the next superstep: which tasks run, with which input."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from lgdist.constants import PULL, PUSH, TASKS
from lgdist.engine.channels import BaseChannel
from lgdist.engine.ids import task_id
from lgdist.engine.spec import GraphSpec
from lgdist.engine.tasks import Task
from lgdist.errors import InvalidUpdateError
from lgdist.types import Send


def _newer(version: Optional[str], seen: Optional[str]) -> bool:
    if version is None:
        return False
    return seen is None or version > seen


def plan_next_step(
    spec: GraphSpec,
    checkpoint: Mapping[str, Any],
    channels: Mapping[str, BaseChannel],
    step: int,
    *,
    checkpoint_ns: str = "",
    read_inputs: bool = True,
) -> dict[str, Task]:
    """The tasks of the next step, keyed by task id, in execution order.

    Push tasks (``Send`` packets written last step) come first, in the order
    they were sent; then every node whose trigger channels have a version the
    node has not seen yet, in graph order.
    """
    tasks: dict[str, Task] = {}
    checkpoint_id = checkpoint["id"]
    versions = checkpoint["channel_versions"]
    seen_all = checkpoint["versions_seen"]

    tasks_channel = channels.get(TASKS)
    if tasks_channel is not None and tasks_channel.is_available():
        for index, packet in enumerate(tasks_channel.get()):
            if not isinstance(packet, Send):
                raise InvalidUpdateError(f"Expected Send, got {packet!r}")
            node = spec.nodes.get(packet.node)
            if node is None:
                raise InvalidUpdateError(
                    f"Invalid node name {packet.node!r} in Send; graph has nodes: "
                    + ", ".join(n for n in spec.nodes if not spec.nodes[n].hidden)
                )
            path = (PUSH, index)
            tid = task_id(checkpoint_id, checkpoint_ns, step, packet.node, PUSH, index)
            tasks[tid] = Task(tid, packet.node, path, packet.arg, (PUSH,), node)

    # Only nodes listening on a channel updated last step can be triggered;
    # they are visited in name order so the plan is deterministic.
    updated = checkpoint.get("updated_channels")
    if updated:
        candidates: Any = sorted({n for c in updated for n in spec.trigger_to_nodes.get(c, ())})
    elif not versions:
        candidates = ()
    else:
        candidates = spec.nodes.keys()
    for name in candidates:
        node = spec.nodes[name]
        seen = seen_all.get(name, {})
        triggered = [
            chan
            for chan in node.triggers
            if channels[chan].is_available() and _newer(versions.get(chan), seen.get(chan))
        ]
        if not triggered:
            continue
        tid = task_id(checkpoint_id, checkpoint_ns, step, name, PULL, ",".join(triggered))
        value = node.read_input(channels) if read_inputs else None
        tasks[tid] = Task(tid, name, (PULL, name), value, tuple(triggered), node)
    return tasks
