"""Values users construct or receive: ``Send``, ``Command``, ``interrupt``,
``Interrupt``, ``RetryPolicy``, ``CachePolicy``, ``StateSnapshot``, ``PregelTask``.

The bottom layer: ``lgdist.errors``, the channels and the graph builders
import these values; this module imports only :mod:`lgdist.retry` and
:mod:`lgdist.state_objects`. Two functions call up into the runtime when they
are called, so they import it then: :func:`interrupt` (the running task's
context) and ``CachePolicy``'s default key function (lgdist's serializer).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Literal, NamedTuple, Optional, Sequence, TypeVar, Union

from langchain_core.messages.tool import ToolOutputMixin

from lgdist.retry import default_retry_on
from lgdist.state_objects import state_to_dict


__all__ = [
    "Send",
    "Command",
    "Interrupt",
    "interrupt",
    "RetryPolicy",
    "CachePolicy",
    "StateSnapshot",
    "PregelTask",
    "StreamMode",
    "All",
    "Overwrite",
]

StreamMode = Literal["values", "updates", "checkpoints", "tasks", "debug", "messages", "custom"]
All = Literal["*"]
N = TypeVar("N")


class Send:
    """A packet for ``node``: the node runs once with ``arg`` as its input in
    the next superstep (map-reduce fan-out)."""

    __slots__ = ("node", "arg")

    def __init__(self, node: str, arg: Any) -> None:
        self.node = node
        self.arg = arg

    def __repr__(self) -> str:
        return f"Send(node={self.node!r}, arg={self.arg!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Send) and (self.node, self.arg) == (other.node, other.arg)

    def __hash__(self) -> int:
        return hash((self.node, repr(self.arg)))


@dataclass
class Interrupt:
    """An interrupt raised by ``interrupt()`` or a static breakpoint."""

    value: Any
    id: str = "placeholder-id"
    response_schema: Any = field(default=None, kw_only=True)

    def __repr__(self) -> str:
        return (
            f"Interrupt(value={self.value!r}, id={self.id!r}, "
            f"response_schema={self.response_schema!r})"
        )


@dataclass(kw_only=True)
class Command(Generic[N], ToolOutputMixin):
    """Returned from a node to update state and route (``goto``), or passed as
    graph input to resume an interrupt (``resume``) and/or update state."""

    graph: Optional[str] = None
    update: Optional[Any] = None
    resume: Optional[Any] = None
    goto: Union[Send, Sequence[Union[Send, N]], N] = ()

    PARENT = "__parent__"

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" for k, v in dataclasses.asdict(self).items() if v]
        return "Command(" + ", ".join(parts) + ")"

    def _update_as_tuples(self) -> list[tuple[str, Any]]:
        update = self.update
        if update is None:
            return []
        if isinstance(update, dict):
            return list(update.items())
        if isinstance(update, (list, tuple)) and all(
            isinstance(t, tuple) and len(t) == 2 and isinstance(t[0], str) for t in update
        ):
            return list(update)
        as_dict = state_to_dict(update)
        if as_dict is not None:
            return list(as_dict.items())
        return [("__root__", update)]


Command.PARENT = "__parent__"  # type: ignore[misc]


class RetryPolicy(NamedTuple):
    """How a failing node is retried (same fields and defaults as LangGraph).

    ``retry_on`` is an exception class, a sequence of them, or a callable
    taking the exception; by default :func:`lgdist.retry.default_retry_on`.
    A node may have a list of policies: the first whose ``retry_on``
    matches a failure applies to it.
    """

    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 128.0
    max_attempts: int = 3
    jitter: bool = True
    retry_on: Union[type[Exception], Sequence[type[Exception]], Callable[[Exception], bool]] = default_retry_on


def _default_cache_key(*args: Any, **kwargs: Any) -> Union[str, bytes]:
    from lgdist.cache.keys import default_cache_key

    return default_cache_key(*args, **kwargs)


@dataclass(frozen=True)
class CachePolicy:
    """Cache a node's writes (``add_node(..., cache_policy=...)`` with a cache
    given at ``compile(cache=...)``): a run whose input has the same
    ``key_func(input)`` within ``ttl`` seconds (``None``: forever) reuses
    them instead of running the node."""

    key_func: Callable[..., Union[str, bytes]] = _default_cache_key
    ttl: Optional[int] = None


class PregelTask(NamedTuple):
    id: str
    name: str
    path: tuple
    error: Optional[Exception] = None
    interrupts: tuple = ()
    state: Any = None
    result: Any = None


class StateSnapshot(NamedTuple):
    """The state of a thread at one checkpoint."""

    values: Any
    next: tuple
    config: dict
    metadata: Optional[dict]
    created_at: Optional[str]
    parent_config: Optional[dict]
    tasks: tuple
    interrupts: tuple = ()


@dataclass
class Overwrite:
    """Write ``value`` to a reducer channel, bypassing the reducer."""

    value: Any


def interrupt(value: Any, *, response_schema: Any = None) -> Any:
    """Pause the graph inside a node and surface ``value`` to the caller.

    The first call raises ``GraphInterrupt``; when the thread is resumed with
    ``Command(resume=x)``, the node runs again from its start and this call
    returns ``x``. Several calls in one node are matched to resume values in
    order. Needs a checkpointer.
    """
    from lgdist.engine.task_context import current_task_context

    return current_task_context().interrupt(value, response_schema)
