"""What a graph invoked inside a running task (a subgraph) inherits.

LangGraph's rules, observed: a subgraph runs with its parent's checkpointer
(even when compiled with one of its own), under the task's checkpoint
namespace, so each call keeps its own history in the parent's thread.
``checkpointer=False`` turns persistence off for the subgraph;
``checkpointer=True`` keeps one history per thread for it, under the
namespace without task ids, so successive calls continue the same state.
"""

from __future__ import annotations

from typing import Any

from lgdist.engine.namespace import recast_namespace
from lgdist.engine.task_context import TaskContext


def nested_saver_and_config(option: Any, parent: TaskContext, config: dict) -> tuple[Any, dict]:
    """The checkpointer a subgraph compiled with ``checkpointer=option`` runs
    with inside ``parent``'s task, and its config."""
    if option is False:
        return None, config
    if option is True:
        configurable = dict(config.get("configurable") or {})
        configurable["checkpoint_ns"] = recast_namespace(configurable.get("checkpoint_ns", ""))
        config = {**config, "configurable": configurable}
    return parent.saver, config


def find_subgraph(action: Any) -> Any:
    """The compiled graph a node runs, if any: the node itself, or one its
    function reaches through a closure variable or a global name (how
    LangGraph finds them too). Only these show up as a task's subgraph
    ``state`` in snapshots; any graph invoked inside a task is nested."""
    if _is_compiled_graph(action):
        return action
    func = getattr(action, "func", None) or getattr(action, "afunc", None) or action
    func = getattr(func, "__func__", func)
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    candidates: list = []
    for cell in getattr(func, "__closure__", None) or ():
        try:
            candidates.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    names = getattr(func, "__globals__", {})
    candidates.extend(names[name] for name in code.co_names if name in names)
    return next((c for c in candidates if _is_compiled_graph(c)), None)


def _is_compiled_graph(obj: Any) -> bool:
    return hasattr(obj, "state_at") and hasattr(obj, "spec")
