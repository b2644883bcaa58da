"""``Runtime``: what a node can ask for besides its state (same as LangGraph's
``langgraph.runtime``): the run's ``context`` (coerced to the graph's
``context_schema``), the ``store``, the custom ``stream_writer`` and
``execution_info`` about the running task."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from typing import Any, Callable, Generic, Optional, TypeVar

ContextT = TypeVar("ContextT")

__all__ = ["ExecutionInfo", "Runtime", "get_runtime"]


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
    """Read-only facts about the running task."""

    checkpoint_id: str
    checkpoint_ns: str
    task_id: str
    # None when the graph runs without a checkpointer (no thread).
    thread_id: Optional[str] = None
    # None when the caller's config has no ``run_id``.
    run_id: Optional[str] = None
    # 1 on the first attempt, then 2, 3... as the node's RetryPolicy retries it.
    node_attempt: int = 1
    # Unix time the first attempt started.
    node_first_attempt_time: Optional[float] = None

    def patch(self, **overrides: Any) -> "ExecutionInfo":
        """A copy with ``overrides`` replaced."""
        return replace(self, **overrides)


def _no_op_stream_writer(chunk: Any) -> None:
    return None


def _no_op_heartbeat() -> None:
    return None


@dataclass(kw_only=True, slots=True, frozen=True)
class Runtime(Generic[ContextT]):
    """Run-scoped context passed to nodes (and routers) that declare a
    ``runtime`` parameter, and returned by :func:`get_runtime`."""

    context: Any = None
    store: Any = None
    stream_writer: Callable[[Any], None] = _no_op_stream_writer
    # lgdist has no idle timeouts: a no-op kept for LangGraph's signature.
    heartbeat: Callable[[], None] = _no_op_heartbeat
    previous: Any = None
    execution_info: Optional[ExecutionInfo] = None
    server_info: Any = None
    control: Any = None

    def merge(self, other: "Runtime[ContextT]") -> "Runtime[ContextT]":
        """``other``'s values where it has them, this runtime's elsewhere."""
        return Runtime(
            context=other.context or self.context,
            store=other.store or self.store,
            stream_writer=other.stream_writer
            if other.stream_writer is not _no_op_stream_writer
            else self.stream_writer,
            heartbeat=other.heartbeat if other.heartbeat is not _no_op_heartbeat else self.heartbeat,
            previous=self.previous if other.previous is None else other.previous,
            execution_info=other.execution_info or self.execution_info,
            server_info=other.server_info or self.server_info,
            control=other.control or self.control,
        )

    def override(self, **overrides: Any) -> "Runtime[ContextT]":
        """A copy with ``overrides`` replaced."""
        return replace(self, **overrides)

    def patch_execution_info(self, **overrides: Any) -> "Runtime[ContextT]":
        """A copy whose ``execution_info`` has ``overrides`` replaced."""
        if self.execution_info is None:
            raise RuntimeError("Cannot patch execution_info before it has been set")
        return replace(self, execution_info=self.execution_info.patch(**overrides))


def get_runtime(context_schema: Optional[type] = None) -> Runtime:
    """The runtime of the running node (``context_schema`` is only a type
    hint). Raises ``RuntimeError`` outside a graph run."""
    from lgdist.engine.task_context import current_task_context

    return current_task_context().runtime


def coerce_context(context_schema: Any, context: Any) -> Any:
    """The context a run's nodes see: a dict given for a dataclass or
    pydantic ``context_schema`` becomes an instance of it (raising its own
    ``TypeError`` / ``ValidationError`` when it does not fit); anything else,
    a TypedDict's dict included, is passed as given."""
    if context is None or context_schema is None:
        return context
    is_class = dataclasses.is_dataclass(context_schema) or (
        isinstance(context_schema, type) and hasattr(context_schema, "model_validate")
    )
    if isinstance(context, dict) and is_class:
        return context_schema(**context)
    return context
