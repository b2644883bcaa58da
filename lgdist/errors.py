"""Every error lgdist raises. All derive from :class:`LgdistError`; those that
LangGraph also has keep LangGraph's builtin bases (``GraphRecursionError`` is
still a ``RecursionError``) so ``except`` clauses written for LangGraph work."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from langchain_core.tools import ToolException
from pydantic import ValidationError

from lgdist.types import Interrupt

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
    "RunFailedError",
    "ScriptExhaustedError",
    "ToolInvocationError",
    "ApiError",
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


class NodeFailedError(LgdistError, RuntimeError):
    """A node raised: raised again by its ``lgdist.run_node`` task (after the
    error is saved as the task's outcome) so that Flower lists the task as
    failed."""


class InvalidNamespaceError(LgdistError, ValueError):
    """A store namespace is empty, starts with the reserved label
    ``"langgraph"``, or has a label that is empty, not a string, or holds a
    period or a NUL byte (periods join labels in SQL stores)."""


class RunFailedError(LgdistError, RuntimeError):
    """A remote run ended with an error. When the node's exception class is
    one lgdist may rebuild (a builtin, an lgdist error, or a class from the
    graph's own package), the error raised is also an instance of that class
    (``except ValueError:`` works as locally) and carries its arguments;
    ``remote_traceback`` holds the worker's traceback either way."""

    remote_traceback: Optional[str] = None


class ScriptExhaustedError(LgdistError, RuntimeError):
    """A ``ScriptedChatModel`` was called more times than it has responses."""


class ToolInvocationError(LgdistError, ToolException):
    """A tool was called with arguments that fail its schema.

    ``message`` is the text the model sees in the error ``ToolMessage``; it
    names the tool, the arguments the model sent and what was wrong with them.
    """

    def __init__(
        self,
        tool_name: str,
        source: ValidationError,
        tool_kwargs: dict[str, Any],
        filtered_errors: Optional[list[Any]] = None,
    ) -> None:
        errors = source.errors() if filtered_errors is None else filtered_errors
        details = "\n".join(
            f"{'.'.join(str(part) for part in e.get('loc', ()))}: {e.get('msg', 'Unknown error')}"
            for e in errors
        )
        self.message = (
            f"Error invoking tool '{tool_name}' with kwargs {tool_kwargs} with error:\n"
            f" {details}\n Please fix the error and try again."
        )
        self.tool_name = tool_name
        self.tool_kwargs = tool_kwargs
        self.source = source
        self.filtered_errors = filtered_errors
        super().__init__(self.message)


class GraphLoadError(LgdistError, ImportError):
    """A graph named in ``LGDIST_GRAPHS`` cannot be imported or is not a
    compiled graph."""


class ApiError(LgdistError):
    """An error ``lgdist serve`` reports to the caller as an HTTP ``status``
    with ``{"detail": detail}``, as LangGraph's server does (404 unknown
    thread, run or assistant; 409 busy thread; 422 bad input)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
