"""``ToolNode``: a graph node that runs the tool calls of the last AI message.

Behaves like LangGraph's prebuilt ``ToolNode`` (checked side by side in
``tests/prebuilt/test_tool_node.py``): the same input shapes, output shapes,
error texts and ``Command`` handling."""

import asyncio
import copy
import dataclasses
import inspect
import types
import typing
from typing import Any, Callable, Optional, Sequence, Union

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage, convert_to_messages
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config, get_executor_for_config
from langchain_core.tools import BaseTool, InjectedToolArg
from langchain_core.tools import tool as create_tool
from pydantic import ValidationError

from lgdist.errors import GraphBubbleUp, ToolInvocationError
from lgdist.prebuilt.tools_condition import tools_condition
from lgdist.types import Command

__all__ = [
    "ToolNode",
    "InjectedState",
    "ToolInvocationError",
    "tools_condition",
]

ErrorHandler = Union[
    bool, str, Callable[..., str], type[Exception], tuple[type[Exception], ...]
]


class InjectedState(InjectedToolArg):
    """Annotate a tool argument to receive the graph state instead of a model value.

    ``Annotated[dict, InjectedState]`` gets the whole state,
    ``Annotated[list, InjectedState("messages")]`` one of its fields. The
    argument is hidden from the model (it is not in ``tool_call_schema``).
    """

    def __init__(self, field: Optional[str] = None) -> None:
        self.field = field


def _default_handle_tool_errors(e: Exception) -> str:
    """LangGraph's default: tell the model about bad arguments, raise the rest."""
    if isinstance(e, ToolInvocationError):
        return e.message
    raise e


class ToolNode(Runnable[Any, Any]):
    """Run the tool calls of the last ``AIMessage``, in parallel, in call order.

    Input and output:

    - a list of messages (``MessageGraph``) → a list of ``ToolMessage``;
    - a dict with ``messages_key``, or an object with that attribute (pydantic
      or dataclass state) → ``{messages_key: [ToolMessage, ...]}``;
    - one tool call ``{"name", "args", "id", "type": "tool_call"}`` (sent with
      ``Send``), or LangGraph's ``{"__type": "tool_call_with_context",
      "tool_call": ..., "state": ...}`` → like a dict input.

    When a tool returns a ``Command``, the output is a list with one entry
    per tool call: the ``Command`` itself, or the usual output for that call.

    ``handle_tool_errors`` decides what a failing tool becomes: by default
    only invalid arguments turn into an error ``ToolMessage`` (other errors
    propagate); ``True`` catches everything (``"Error: {e!r}\\n Please fix your
    mistakes."``); a string is the message; a callable builds it (only for
    the exception types its first parameter is annotated with); exception
    types catch just those; ``False`` raises. A call to an unknown tool always
    becomes an error ``ToolMessage`` listing the valid tools.
    """

    def __init__(
        self,
        tools: Sequence[Union[BaseTool, Callable[..., Any]]],
        *,
        name: str = "tools",
        tags: Optional[list[str]] = None,
        handle_tool_errors: ErrorHandler = _default_handle_tool_errors,
        messages_key: str = "messages",
    ) -> None:
        self.name = name
        self.tags = tags
        self.handle_tool_errors = handle_tool_errors
        self.messages_key = messages_key
        self._tools_by_name: dict[str, BaseTool] = {}
        for t in tools:
            tool_ = t if isinstance(t, BaseTool) else create_tool(t)
            self._tools_by_name[tool_.name] = tool_

    @property
    def tools_by_name(self) -> dict[str, BaseTool]:
        """The tools this node can run, by name."""
        return self._tools_by_name

    def invoke(self, input: Any, config: Optional[RunnableConfig] = None, **kwargs: Any) -> Any:
        """Run the tool calls on threads (``max_concurrency`` from the config)."""
        config = ensure_config(config)
        calls, as_list, state = self._parse_input(input)
        # The config-aware executor copies context variables into its threads,
        # so a tool can still call interrupt() or get_stream_writer().
        with get_executor_for_config(config) as executor:
            outputs = list(
                executor.map(lambda call: self._run_one(call, as_list, state, config), calls)
            )
        return self._combine_outputs(outputs, as_list)

    async def ainvoke(
        self, input: Any, config: Optional[RunnableConfig] = None, **kwargs: Any
    ) -> Any:
        """Run the tool calls concurrently on the event loop."""
        config = ensure_config(config)
        calls, as_list, state = self._parse_input(input)
        outputs = await asyncio.gather(
            *(self._arun_one(call, as_list, state, config) for call in calls)
        )
        return self._combine_outputs(list(outputs), as_list)

    # -- input -----------------------------------------------------------

    def _parse_input(self, input: Any) -> tuple[list[ToolCall], bool, Any]:
        """Return (tool calls, whether the output is a bare list, the state
        injected into ``InjectedState`` arguments)."""
        if isinstance(input, list):
            return self._calls_of(input), True, {self.messages_key: input}
        if isinstance(input, dict):
            if input.get("__type") == "tool_call_with_context":
                return [input["tool_call"]], False, input.get("state", {})
            if input.get("type") == "tool_call" and self.messages_key not in input:
                return [input], False, {}  # type: ignore[list-item]
            if self.messages_key in input:
                return self._calls_of(input[self.messages_key]), False, input
        elif hasattr(input, self.messages_key):
            return self._calls_of(getattr(input, self.messages_key)), False, input
        raise ValueError("No message found in input")

    @staticmethod
    def _calls_of(messages: Sequence[AnyMessage]) -> list[ToolCall]:
        if not messages:
            raise ValueError("No message found in input")
        for message in reversed(messages):
            if isinstance(message, AIMessage):
                return list(message.tool_calls)
        raise ValueError("No AIMessage found in input")

    # -- running one call ------------------------------------------------

    def _run_one(self, call: ToolCall, as_list: bool, state: Any, config: RunnableConfig) -> Any:
        tool_ = self._tools_by_name.get(call["name"])
        if tool_ is None:
            return self._unknown_tool_message(call)
        try:
            try:
                output = tool_.invoke(self._prepare_call(tool_, call, state, as_list), config)
            except ValidationError as exc:
                raise self._invocation_error(tool_, call, exc) from exc
            return self._check_output(output, call, as_list)
        except GraphBubbleUp:
            raise  # interrupts and parent commands are control flow, not tool errors
        except Exception as exc:
            return self._error_message(exc, call)

    async def _arun_one(
        self, call: ToolCall, as_list: bool, state: Any, config: RunnableConfig
    ) -> Any:
        tool_ = self._tools_by_name.get(call["name"])
        if tool_ is None:
            return self._unknown_tool_message(call)
        try:
            try:
                output = await tool_.ainvoke(self._prepare_call(tool_, call, state, as_list), config)
            except ValidationError as exc:
                raise self._invocation_error(tool_, call, exc) from exc
            return self._check_output(output, call, as_list)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            return self._error_message(exc, call)

    def _prepare_call(
        self, tool_: BaseTool, call: ToolCall, state: Any, as_list: bool
    ) -> dict[str, Any]:
        """The tool call with ``type`` set and ``InjectedState`` args filled in."""
        args = dict(call["args"])
        for arg, field in _injected_state_args(tool_).items():
            args[arg] = state if field is None else _state_field(state, field, tool_.name, as_list)
        return {**call, "args": args, "type": "tool_call"}

    def _invocation_error(
        self, tool_: BaseTool, call: ToolCall, exc: ValidationError
    ) -> ToolInvocationError:
        # Errors about injected arguments mean nothing to the model: leave them out.
        hidden = _injected_arg_names(tool_)
        errors = [e for e in exc.errors() if not (e["loc"] and e["loc"][0] in hidden)]
        return ToolInvocationError(call["name"], exc, call["args"], errors)

    def _unknown_tool_message(self, call: ToolCall) -> ToolMessage:
        valid = ", ".join(self._tools_by_name)
        return ToolMessage(
            content=f"Error: {call['name']} is not a valid tool, try one of [{valid}].",
            name=call["name"],
            tool_call_id=call["id"],
            status="error",
        )

    def _error_message(self, exc: Exception, call: ToolCall) -> ToolMessage:
        content = _error_content(self.handle_tool_errors, exc)
        return ToolMessage(
            content=content, name=call["name"], tool_call_id=call["id"], status="error"
        )

    # -- output ----------------------------------------------------------

    def _check_output(self, output: Any, call: ToolCall, as_list: bool) -> Any:
        """Validate a returned ``Command`` and name its ``ToolMessage``s."""
        if not _is_command(output) or output.update is None:
            return output
        update = output.update
        if as_list and isinstance(update, dict):
            raise ValueError(
                "Tools can provide a dict in Command.update only when using dict with "
                f"'{self.messages_key}' key as ToolNode input, got: {update} "
                f"for tool '{call['name']}'"
            )
        if not as_list and isinstance(update, list):
            raise ValueError(
                "Tools can provide a list of messages in Command.update only when using "
                f"list of messages as ToolNode input, got: {update} for tool '{call['name']}'"
            )
        if isinstance(update, list):
            messages = convert_to_messages(update)
        elif isinstance(update, dict):
            messages = convert_to_messages(update.get(self.messages_key, []))
        else:
            return output
        answers = [
            m for m in messages if isinstance(m, ToolMessage) and m.tool_call_id == call["id"]
        ]
        if not answers and output.graph != Command.PARENT:
            raise ValueError(
                f"Expected to have a matching ToolMessage in Command.update for tool "
                f"'{call['name']}', got: {messages}. Every tool call (LLM requesting to "
                "call a tool) in the message history MUST have a corresponding ToolMessage. "
                "You can fix it by modifying the tool to return `Command(update="
                '{"messages": [ToolMessage("Success", tool_call_id=tool_call_id), ...]}, ...)`.'
            )
        # Copies, so a Command object the tool keeps around is not changed.
        answer_ids = {id(m) for m in answers}
        named = [
            m.model_copy(update={"name": call["name"]}) if id(m) in answer_ids else m
            for m in messages
        ]
        if isinstance(update, list):
            return _replace_update(output, named)
        if self.messages_key in update:
            return _replace_update(output, {**update, self.messages_key: named})
        return output

    def _combine_outputs(self, outputs: list[Any], as_list: bool) -> Any:
        if not any(_is_command(o) for o in outputs):
            return outputs if as_list else {self.messages_key: outputs}
        # With a Command among them, each call's result stays a separate update.
        return [
            o if _is_command(o) else ([o] if as_list else {self.messages_key: [o]})
            for o in outputs
        ]


# -- helpers ---------------------------------------------------------------


def _is_command(value: Any) -> bool:
    return isinstance(value, Command)


def _replace_update(command: Any, update: Any) -> Any:
    if dataclasses.is_dataclass(command):
        return dataclasses.replace(command, update=update)
    clone = copy.copy(command)
    clone.update = update
    return clone


def _injected_arg_names(tool_: BaseTool) -> set[str]:
    """Arguments in the tool's full schema that the model never sees."""
    schema, visible = tool_.args_schema, tool_.tool_call_schema
    if not (inspect.isclass(schema) and hasattr(schema, "model_fields")):
        return set()
    shown = set(getattr(visible, "model_fields", {}) or {})
    return set(schema.model_fields) - shown


def _injected_state_args(tool_: BaseTool) -> dict[str, Optional[str]]:
    """``{argument: state field or None}`` for ``InjectedState`` arguments."""
    schema = tool_.args_schema
    if not (inspect.isclass(schema) and hasattr(schema, "model_fields")):
        return {}
    found: dict[str, Optional[str]] = {}
    for arg, info in schema.model_fields.items():
        for marker in info.metadata:
            if marker is InjectedState or (inspect.isclass(marker) and issubclass(marker, InjectedState)):
                found[arg] = None
            elif isinstance(marker, InjectedState):
                found[arg] = marker.field
    return found


def _state_field(state: Any, field: str, tool_name: str, as_list: bool) -> Any:
    if as_list and field not in state:
        # A message list stands in for {messages_key: list}; nothing else exists.
        raise ValueError(
            f"Invalid input to ToolNode. Tool {tool_name} requires graph state dict as "
            f"input. State should contain fields {field}."
        )
    return state[field] if isinstance(state, dict) else getattr(state, field)


def _error_content(handler: ErrorHandler, exc: Exception) -> str:
    """The error ``ToolMessage`` text for ``exc``, or re-raise ``exc``."""
    generic = f"Error: {exc!r}\n Please fix your mistakes."
    if handler is True:
        return generic
    if handler is False:
        raise exc
    if isinstance(handler, str):
        return handler
    if isinstance(handler, tuple) or (inspect.isclass(handler) and issubclass(handler, Exception)):
        if isinstance(exc, handler):  # type: ignore[arg-type]
            return generic
        raise exc
    if callable(handler):
        if isinstance(exc, _handled_types(handler)):
            return handler(exc)
        raise exc
    raise ValueError(f"Unsupported handle_tool_errors value: {handler!r}")


def _handled_types(handler: Callable[..., Any]) -> tuple[type[BaseException], ...]:
    """Exception types named by the annotation of the handler's first parameter."""
    try:
        params = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        return (Exception,)
    if not params or params[0].annotation is inspect.Parameter.empty:
        return (Exception,)
    try:
        annotation = typing.get_type_hints(handler).get(params[0].name, Exception)
    except Exception:
        annotation = params[0].annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        candidates = typing.get_args(annotation)
    else:
        candidates = (annotation,)
    if not all(inspect.isclass(c) and issubclass(c, BaseException) for c in candidates):
        raise ValueError(
            "Arbitrary types are not supported in the error handler signature. Please "
            "annotate the error with either a specific Exception type or a union of "
            "Exception types. For example, `def custom_handler(e: ValueError)` or "
            "`def custom_handler(e: Union[ValueError, TypeError])`. "
            f"Got '{annotation}' instead."
        )
    return candidates
