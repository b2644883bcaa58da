"""Accessors a node can call without taking extra parameters (same import
path as LangGraph's ``langgraph.config``)."""

from __future__ import annotations

from typing import Any, Callable

from langchain_core.runnables import RunnableConfig

__all__ = ["get_stream_writer", "get_config", "get_store"]


def get_stream_writer() -> Callable[[Any], None]:
    """The writer for ``stream_mode="custom"`` of the running node (a no-op
    outside a graph run)."""
    from lgdist.engine.task_context import maybe_task_context

    ctx = maybe_task_context()
    return ctx.stream_writer if ctx else (lambda chunk: None)


def get_config() -> RunnableConfig:
    from lgdist.engine.task_context import current_task_context

    return current_task_context().config


def get_store() -> Any:
    from lgdist.engine.task_context import current_task_context

    runtime = current_task_context().runtime
    return getattr(runtime, "store", None)
