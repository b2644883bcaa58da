"""Every error lgdist raises. All derive from :class:`LgdistError`; those that
LangGraph also has keep LangGraph's builtin bases (``GraphRecursionError`` is
still a ``RecursionError``) so ``except`` clauses written for LangGraph work."""

from __future__ import annotations

from typing import Any, Sequence

__all__ = [
    "LgdistError",
    "ErrorCode",
    "GraphRecursionError",
    "InvalidUpdateError",
    "GraphBubbleUp",
    "GraphInterrupt",
    "NodeInterrupt",
    "ParentCommand",
    "EmptyInputError",
    "EmptyChannelError",
    "TaskNotFound",
    "CheckpointNotLatest",
    "MissingThreadIdError",
    "SerializationError",
    "GraphNotRegisteredError",
    "InvalidPayloadError",
    "ThreadBusyError",
    "AmbiguousResumeError",
    "UnknownBranchTargetError",
    "RunNotFoundError",
    "InvalidNamespaceError",
    "create_error_message",
]


class ErrorCode:
    GRAPH_RECURSION_LIMIT = "GRAPH_RECURSION_LIMIT"
    INVALID_CONCURRENT_GRAPH_UPDATE = "INVALID_CONCURRENT_GRAPH_UPDATE"
    INVALID_GRAPH_NODE_RETURN_VALUE = "INVALID_GRAPH_NODE_RETURN_VALUE"
    MULTIPLE_SUBGRAPHS = "MULTIPLE_SUBGRAPHS"
    INVALID_CHAT_HISTORY = "INVALID_CHAT_HISTORY"


def create_error_message(*, message: str, error_code: str) -> str:
    return (
        f"{message}\n"
        "For troubleshooting, visit: https://docs.langchain.com/oss/python/langgraph/"
        f"errors/{error_code}"
    )


class LgdistError(Exception):
    """Base class of every lgdist error."""


class GraphRecursionError(LgdistError, RecursionError):
    """The graph ran ``recursion_limit`` supersteps without reaching a stop."""


class InvalidUpdateError(LgdistError, Exception):
    """A node or caller wrote an update the graph's channels cannot take."""


class UnknownBranchTargetError(InvalidUpdateError, KeyError):
    """A conditional edge's path function returned a value missing from its
    path map. A ``KeyError`` too, as in LangGraph."""

    __str__ = BaseException.__str__  # KeyError would quote the message


class GraphBubbleUp(LgdistError, Exception):
    """Raised inside a node to stop the step (interrupts, parent commands)."""


class GraphInterrupt(GraphBubbleUp):
    """A node called ``interrupt()``; carries the interrupts."""

    def __init__(self, interrupts: Sequence[Any] = ()) -> None:
        super().__init__(interrupts)
        self.interrupts = tuple(interrupts)


class NodeInterrupt(GraphInterrupt):
    """Deprecated in LangGraph; kept so old code still imports."""

    def __init__(self, value: Any, id: str | None = None) -> None:
        from lgdist.types import Interrupt

        super().__init__([Interrupt(value=value, id=id or "placeholder-id")])


class ParentCommand(GraphBubbleUp):
    def __init__(self, command: Any) -> None:
        super().__init__(command)
        self.command = command


class EmptyInputError(LgdistError, Exception):
    """The graph was called with no input and there is nothing to resume."""


class EmptyChannelError(LgdistError, Exception):
    """A channel was read before anything was written to it."""


class AmbiguousResumeError(LgdistError, RuntimeError):
    """``Command(resume=value)`` while several interrupts wait for an answer:
    say which one with ``Command(resume={interrupt_id: value, ...})``."""


class TaskNotFound(LgdistError, Exception):
    """A resume or write named a task the checkpoint does not have."""


class CheckpointNotLatest(LgdistError, Exception):
    """An operation needing the thread's latest checkpoint got an older one."""


class MissingThreadIdError(LgdistError, ValueError):
    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "Checkpointer requires one or more of the following 'configurable' keys: "
            "thread_id, checkpoint_ns, checkpoint_id"
        )


class SerializationError(LgdistError, TypeError):
    """A value cannot be stored as tagged JSON; the message names the key."""


class GraphNotRegisteredError(LgdistError, LookupError):
    """A message named a graph this worker does not have."""

    def __init__(self, name: str, registered: Sequence[str]) -> None:
        names = ", ".join(sorted(registered)) or "(none)"
        super().__init__(
            f"graph {name!r} is not registered on this worker; registered: {names}. "
            "Register it with LGDIST_GRAPHS='name=module:attribute'."
        )
        self.name = name
        self.registered = list(registered)


class InvalidPayloadError(LgdistError, ValueError):
    """A queue message did not match its schema."""


class ThreadBusyError(LgdistError, RuntimeError):
    """A run was submitted on a thread that already has an active run and the
    double-texting policy is ``reject``."""


class RunNotFoundError(LgdistError, LookupError):
    """No run with that id exists."""


class ThreadNotFoundError(LgdistError, LookupError):
    """No thread with that id exists (nothing ever ran on it)."""


class InvalidThreadIdError(LgdistError, ValueError):
    """A thread id that cannot be stored: empty, longer than 255 characters,
    or containing a NUL character."""


class RunFailedError(LgdistError, RuntimeError):
    """A remote run ended with an error; the message holds the node's error."""


class NodeFailedError(LgdistError, RuntimeError):
    """A node raised: raised again by its ``lgdist.run_node`` task (after the
    error is saved as the task's outcome) so that Flower lists the task as
    failed."""


class InvalidNamespaceError(LgdistError, ValueError):
    """A store namespace is empty, starts with the reserved label
    ``"langgraph"``, or has a label that is empty, not a string, or holds a
    period or a NUL byte (periods join labels in SQL stores)."""
