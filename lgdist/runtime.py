"""``Runtime``: what a node can ask for besides its state (same as LangGraph's
``langgraph.runtime``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Optional, TypeVar

ContextT = TypeVar("ContextT")

__all__ = ["Runtime", "get_runtime"]


@dataclass
class Runtime(Generic[ContextT]):
    """Run-scoped context passed to nodes that declare a ``runtime`` parameter."""

    context: Any = None
    store: Any = None
    stream_writer: Callable[[Any], None] = lambda chunk: None
    previous: Any = None


def get_runtime(context_schema: Optional[type] = None) -> Runtime:
    from lgdist.engine.task_context import current_task_context

    return current_task_context().runtime
