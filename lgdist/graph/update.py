"""``update_state``: write values to a thread as if a node returned them,
saving a new checkpoint (source ``update``). Shared by the compiled graph
and the distributed coordinator."""

from __future__ import annotations

from typing import Any, Optional

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config

from lgdist.checkpoint.base import BaseCheckpointSaver
from lgdist.constants import END, PULL, START
from lgdist.engine import apply_writes, channels_from_checkpoint, create_checkpoint, empty_checkpoint
from lgdist.engine.checkpoint import checkpoint_metadata, copy_checkpoint
from lgdist.engine.checkpoint import next_version as default_next_version
from lgdist.engine.execute import make_fresh_reader
from lgdist.engine.ids import task_id as make_task_id
from lgdist.engine.spec import GraphSpec
from lgdist.engine.task_context import TaskContext, reset_task_context, set_task_context
from lgdist.engine.tasks import Task
from lgdist.errors import InvalidUpdateError

__all__ = ["apply_update"]


def apply_update(
    spec: GraphSpec,
    saver: BaseCheckpointSaver,
    config: RunnableConfig,
    values: Any,
    as_node: Optional[str],
    *,
    parents: Optional[dict] = None,
    caller_config: Optional[RunnableConfig] = None,
) -> RunnableConfig:
    """``update_state``'s rules, shared with the distributed backend.
    ``caller_config`` is the config as the caller gave it (its metadata and
    scalar configurable values go into the checkpoint's metadata)."""
    saved = saver.get_tuple(config)
    if saved is not None:
        checkpoint = copy_checkpoint(saved.checkpoint)
        step = saved.metadata.get("step", -1)
        parent = saved.config
    else:
        checkpoint = empty_checkpoint()
        step = -1
        parent = {"configurable": {"thread_id": config["configurable"].get("thread_id"), "checkpoint_ns": config["configurable"].get("checkpoint_ns", "")}}
    saved_versions = dict(checkpoint["channel_versions"])
    channels = channels_from_checkpoint(spec.channels, checkpoint)
    if as_node is None:
        as_node = _updating_node(spec, checkpoint, fresh_thread=saved is None)
    if as_node == END:
        raise InvalidUpdateError("update_state(as_node=END) is not supported")
    if as_node not in spec.nodes:
        raise InvalidUpdateError(f"Node {as_node} does not exist")
    node = spec.nodes[as_node]
    seen = checkpoint["versions_seen"].setdefault(as_node, {})
    for chan in node.triggers:
        if chan in checkpoint["channel_versions"]:
            seen[chan] = checkpoint["channel_versions"][chan]
    tid = make_task_id(checkpoint["id"], "", step + 1, as_node, "update")
    task = Task(tid, as_node, (PULL, as_node), None, (), node)
    ctx = TaskContext(task_id=tid, node=as_node, checkpoint_ns="", config=ensure_config(config))
    token = set_task_context(ctx)
    try:
        task.writes = node.write_output(values, make_fresh_reader(channels))
    finally:
        reset_task_context(token)
    next_version = saver.get_next_version if saver else default_next_version
    updated = apply_writes(checkpoint, channels, [task], next_version)
    new = create_checkpoint(checkpoint, channels, updated_channels=updated)
    new_versions = {c: v for c, v in new["channel_versions"].items() if saved_versions.get(c) != v}
    metadata = checkpoint_metadata(
        caller_config or {}, {"source": "update", "step": step + 1, "parents": dict(parents or {})}
    )
    return saver.put(parent, new, metadata, new_versions)


def _updating_node(spec: GraphSpec, checkpoint: dict, *, fresh_thread: bool) -> str:
    """The node an update without ``as_node`` is made as: the graph's only
    node, START on a fresh thread, else the node that ran last (an error
    when several did)."""
    user_nodes = [n for n in spec.nodes if n != START]
    if len(user_nodes) == 1:
        return user_nodes[0]
    if fresh_thread:
        return START
    latest: dict[str, str] = {
        n: max(seen.values()) for n, seen in checkpoint["versions_seen"].items() if n in spec.nodes and seen
    }
    if not latest:
        return START
    top = max(latest.values())
    names = [n for n, v in latest.items() if v == top]
    if len(names) > 1:
        raise InvalidUpdateError("Ambiguous update, specify as_node")
    return names[0]
