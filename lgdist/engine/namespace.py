"""Checkpoint namespaces: where a subgraph's checkpoints live in its thread.

A graph run inside a task stores its checkpoints in the thread under the
task's namespace, ``"<node>:<task id>"``, nested with ``|``:
``"outer:<id>|inner:<id>"``. The root graph's namespace is ``""``. Streams
name a subgraph's events by the namespace as a tuple of segments.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from lgdist.constants import NS_END, NS_SEP


def task_namespace(graph_ns: str, node: str, task_id: str) -> str:
    """The namespace of one task of a graph whose namespace is ``graph_ns``."""
    own = f"{node}{NS_END}{task_id}"
    return f"{graph_ns}{NS_SEP}{own}" if graph_ns else own


def namespace_tuple(ns: str) -> tuple[str, ...]:
    """``"a:1|b:2"`` -> ``("a:1", "b:2")``; the root namespace is ``()``."""
    return tuple(ns.split(NS_SEP)) if ns else ()


def recast_namespace(ns: str) -> str:
    """The namespace without task ids (``"a:1|b:2"`` -> ``"a|b"``): the path
    of node names that leads to a subgraph."""
    return NS_SEP.join(part.split(NS_END)[0] for part in ns.split(NS_SEP)) if ns else ""


def graph_namespace_of_task(task_ns: str) -> tuple[str, ...]:
    """The namespace (as a tuple) of the graph a task with ``task_ns`` runs in."""
    return namespace_tuple(task_ns)[:-1]


def with_checkpoint_map(config: Optional[Mapping[str, Any]], metadata: Optional[Mapping[str, Any]]) -> Any:
    """A subgraph checkpoint's config as snapshots and streams show it: with
    ``checkpoint_map``, the checkpoint id of every enclosing graph plus its
    own (``metadata["parents"]`` holds the enclosing ones)."""
    if not config:
        return config
    parents = (metadata or {}).get("parents") or {}
    configurable = config.get("configurable") or {}
    if not parents or "checkpoint_id" not in configurable:
        return config
    checkpoint_map = {**parents, configurable.get("checkpoint_ns", ""): configurable["checkpoint_id"]}
    return {**config, "configurable": {**configurable, "checkpoint_map": checkpoint_map}}
