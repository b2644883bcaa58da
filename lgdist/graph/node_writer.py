"""What a node's output writes when the node finishes: its state updates
(from a dict, a state object or ``Command``\\s), its static edges and joins,
``Command.goto`` destinations, and the routes its conditional edges choose.
Written once as a generator; the sync and async writers drive it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Callable, Generator, Mapping, Optional

from langchain_core.messages import BaseMessage

from lgdist.constants import END
from lgdist.engine.spec import Write
from lgdist.engine.task_context import maybe_task_context
from lgdist.errors import ParentCommand
from lgdist.graph.branch import destinations_to_writes, route_async, route_sync, router_config, trigger_channel
from lgdist.graph.message import add_messages
from lgdist.graph.node import is_async_only
from lgdist.types import Command

if TYPE_CHECKING:
    from lgdist.graph.state import StateGraph


def node_writer(
    graph: "StateGraph",
    name: str,
    joins: Mapping[str, list[tuple[str, str]]],
    known: set[str],
    *,
    from_input: bool = False,
) -> Callable:
    """The ``write_output`` of node ``name`` (of START with ``from_input``):
    ``write(output, read_fresh)`` returns the writes, ``write.awrite`` is
    its async form (for async routers)."""
    static_ends = sorted(end for start, end in graph.edges if start == name)
    branches = list(graph.branches.get(name, {}).values())
    join_writes = list(joins.get(name, []))
    state_keys = graph._state_keys()
    state_schema = graph.state_schema
    message_keys = {key for key, chan in graph.channels.items() if getattr(chan, "operator", None) is add_messages}

    def writes_of(output: Any, read_fresh: Callable) -> Generator[tuple, list[Write], list[Write]]:
        # Yields (branch, state, config) for each conditional edge to
        # route and receives its writes: the sync and async writers
        # below route with branch.route / await branch.aroute.
        writes, gotos = _output_writes(graph, name, output, from_input)
        if message_keys:
            _assign_message_ids(writes, message_keys)
        writes.extend((trigger_channel(end), None) for end in static_ends if end != END)
        writes.extend((chan, start) for chan, start in join_writes)
        if gotos:
            writes.extend(destinations_to_writes(gotos, known))
        if branches:
            ctx = maybe_task_context()
            config = ctx.config if ctx else {}
            fresh = read_fresh(writes)
            state = graph._read_state(fresh, state_schema, state_keys)
            for index, branch in enumerate(branches):
                writes.extend((yield branch, state, router_config(config, ctx, index)))
        return writes

    def write(output: Any, read_fresh: Callable) -> list[Write]:
        return route_sync(writes_of(output, read_fresh))

    async def awrite(output: Any, read_fresh: Callable) -> list[Write]:
        return await route_async(writes_of(output, read_fresh))

    write.awrite = awrite  # type: ignore[attr-defined]
    write.has_async_router = any(is_async_only(b.path) for b in branches)  # type: ignore[attr-defined]
    return write


def _output_writes(graph: "StateGraph", name: str, output: Any, from_input: bool) -> tuple[list[Write], list[Any]]:
    """The state updates a node's output makes, and its ``Command.goto``
    destinations.

    A Command, or a list holding at least one Command (ToolNode's output
    when a tool returns one): each Command gives its update and goto, each
    other item is an ordinary update."""
    writes: list[Write] = []
    gotos: list[Any] = []
    if isinstance(output, Command):
        parts: Optional[list] = [output]
    elif isinstance(output, (list, tuple)) and any(isinstance(o, Command) for o in output):
        parts = list(output)
    else:
        parts = None
    if parts is not None:
        for part in parts:
            if not isinstance(part, Command):
                if part is not None:
                    writes.extend(graph._updates_from_output(name, part))
                continue
            if part.graph == Command.PARENT:
                raise ParentCommand(part)
            if part.update is not None:
                writes.extend(graph._command_update(part))
            goto = part.goto
            if goto:
                gotos.extend(goto if isinstance(goto, (list, tuple)) else [goto])
    elif from_input:
        writes.extend(graph._updates_from_input(output))
    elif output is not None:
        writes.extend(graph._updates_from_output(name, output))
    return writes, gotos


def _assign_message_ids(writes: list[Write], keys: set[str]) -> None:
    """Give messages written to an ``add_messages`` key their id when the
    node writes them, as LangGraph does: stream chunks, stored pending writes
    and the reduced state then all show the same id, whichever process or
    thread looks first."""
    for chan, value in writes:
        if chan not in keys:
            continue
        for message in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(message, BaseMessage) and message.id is None:
                message.id = str(uuid.uuid4())
