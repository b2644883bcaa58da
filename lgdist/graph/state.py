"""``StateGraph``: the builder users add nodes and edges to, and its
compilation into an engine :class:`~lgdist.engine.spec.GraphSpec`."""

from __future__ import annotations

import uuid
import warnings
from collections import defaultdict
from typing import Any, Callable, Generator, Mapping, Optional, Sequence, Union

from langchain_core.messages import BaseMessage

from lgdist.constants import END, RESERVED, START, TAG_HIDDEN, TASKS
from lgdist.engine.channels import (
    BaseChannel,
    EphemeralValue,
    LastValueAfterFinish,
    NamedBarrierValue,
    NamedBarrierValueAfterFinish,
    Topic,
)
from lgdist.engine.spec import GraphSpec, NodeSpec, Write
from lgdist.errors import ErrorCode, InvalidUpdateError, create_error_message
from lgdist.graph.branch import (
    Branch,
    destinations_to_writes,
    route_async,
    route_sync,
    router_config,
    trigger_channel,
)
from lgdist.graph.nesting import find_subgraph
from lgdist.graph.message import add_messages
from lgdist.graph.node import NodeRunnable, as_node, is_async_only
from lgdist.graph.schema import channels_for_schema, node_input_schema, schema_hints
from lgdist.retry import as_policies
from lgdist.state_objects import coerce_to_schema, state_to_dict
from lgdist.types import Command, RetryPolicy, Send

__all__ = ["StateGraph"]


class _NodeDef:
    __slots__ = (
        "name",
        "action",
        "input_schema",
        "retry_policy",
        "metadata",
        "is_subgraph",
        "destinations",
        "defer",
        "cache_policy",
    )

    def __init__(
        self, name, action, input_schema, retry_policy, metadata, destinations, defer=False, cache_policy=None
    ) -> None:
        self.defer = defer
        self.cache_policy = cache_policy
        self.name = name
        self.action = action
        self.input_schema = input_schema
        self.retry_policy = retry_policy
        self.metadata = metadata or {}
        self.is_subgraph = hasattr(action, "get_graph_spec")
        self.destinations = destinations


class StateGraph:
    """A graph whose nodes read and update a shared state.

    ``state_schema`` is a TypedDict, dataclass or pydantic model; a key
    annotated ``Annotated[T, reducer]`` folds concurrent writes with
    ``reducer``, other keys keep the last value and reject two writes in one
    step.
    """

    def __init__(
        self,
        state_schema: Any = None,
        context_schema: Any = None,
        *,
        input_schema: Any = None,
        output_schema: Any = None,
        **kwargs: Any,
    ) -> None:
        if state_schema is None:
            state_schema = kwargs.pop("config_schema", None) and None
        # Old spellings: input=, output=, config_schema=.
        input_schema = input_schema or kwargs.pop("input", None)
        output_schema = output_schema or kwargs.pop("output", None)
        self.state_schema = state_schema
        self.context_schema = context_schema or kwargs.pop("config_schema", None)
        self.input_schema = input_schema or state_schema
        self.output_schema = output_schema or state_schema
        self.channels: dict[str, BaseChannel] = {}
        for schema in (state_schema, self.input_schema, self.output_schema):
            for key, chan in channels_for_schema(schema).items():
                self.channels.setdefault(key, chan)
        self.nodes: dict[str, _NodeDef] = {}
        self.edges: set[tuple[str, str]] = set()
        self.waiting_edges: set[tuple[tuple[str, ...], str]] = set()
        self.branches: dict[str, dict[str, Branch]] = defaultdict(dict)
        self.compiled = False

    # -- building ------------------------------------------------------------
    def add_node(
        self,
        node: Union[str, Callable, Any],
        action: Any = None,
        *,
        defer: bool = False,
        metadata: Optional[dict] = None,
        input_schema: Any = None,
        retry_policy: Optional[Union[RetryPolicy, Sequence[RetryPolicy]]] = None,
        cache_policy: Any = None,
        destinations: Any = None,
        **kwargs: Any,
    ) -> "StateGraph":
        """Add a node. ``node`` may be the name (with ``action``) or the action
        itself, whose name is then used."""
        retry_policy = retry_policy or kwargs.pop("retry", None)
        input_schema = input_schema or kwargs.pop("input", None)
        if not isinstance(node, str):
            action = node
            name = getattr(action, "name", None) or getattr(action, "__name__", None)
            if not name:
                raise ValueError("Node name must be provided if action is not a function")
            node = name
        if action is None:
            raise RuntimeError(f"Expected a function or Runnable action for node '{node}'")
        if self.compiled:
            warnings.warn("Adding a node to a graph that has already been compiled.", stacklevel=2)
        if node in self.nodes:
            raise ValueError(f"Node `{node}` already present.")
        if node in (START, END) or node in RESERVED:
            raise ValueError(f"Node `{node}` is reserved.")
        for ch in ("|", ":"):
            if ch in node:
                raise ValueError(f"'{ch}' is a reserved character and is not allowed in the node names.")
        # As in LangGraph, a node's first parameter's type hint is its input
        # schema: keys it names outside the state schema become channels
        # (private state that earlier nodes can write for it).
        input_schema = input_schema or node_input_schema(action)
        if input_schema is not None:
            for key, chan in channels_for_schema(input_schema).items():
                self.channels.setdefault(key, chan)
        self.nodes[node] = _NodeDef(
            node, action, input_schema, retry_policy, metadata, destinations, defer=defer, cache_policy=cache_policy
        )
        return self

    def add_edge(self, start_key: Union[str, Sequence[str]], end_key: str) -> "StateGraph":
        """A static edge; a list of sources waits for all of them (a join)."""
        if self.compiled:
            warnings.warn("Adding an edge to a graph that has already been compiled.", stacklevel=2)
        if isinstance(start_key, str):
            if start_key == END:
                raise ValueError("END cannot be a start node")
            if end_key == START:
                raise ValueError("START cannot be an end node")
            self.edges.add((start_key, end_key))
            return self
        for start in start_key:
            if start == END:
                raise ValueError("END cannot be a start node")
            if start not in self.nodes:
                raise ValueError(f"Need to add_node `{start}` first")
        if end_key == END:
            raise ValueError("END cannot be an end node")
        if end_key not in self.nodes:
            raise ValueError(f"Need to add_node `{end_key}` first")
        self.waiting_edges.add((tuple(start_key), end_key))
        return self

    def add_conditional_edges(
        self,
        source: str,
        path: Any,
        path_map: Optional[Union[dict, list]] = None,
        then: Optional[str] = None,
    ) -> "StateGraph":
        """Route after ``source`` by calling ``path`` on the updated state."""
        if then is not None:
            raise NotImplementedError("`then=` was removed from LangGraph; add an edge instead")
        name = getattr(path, "__name__", None) or getattr(path, "name", None) or "condition"
        if name == "<lambda>":
            name = "condition"
        if name in self.branches[source]:
            raise ValueError(f"Branch with name `{name}` already exists for node `{source}`")
        self.branches[source][name] = Branch.create(path, path_map)
        return self

    def add_sequence(self, nodes: Sequence[Union[Callable, tuple[str, Any]]]) -> "StateGraph":
        if not nodes:
            raise ValueError("Sequence requires at least one node.")
        previous: Optional[str] = None
        for item in nodes:
            if isinstance(item, tuple) and len(item) == 2:
                name, action = item
            else:
                action = item
                name = getattr(item, "name", None) or getattr(item, "__name__", None)
            if name in self.nodes:
                raise ValueError(f"Node names must be unique: node with the name '{name}' already exists.")
            self.add_node(name, action)
            if previous is not None:
                self.add_edge(previous, name)
            previous = name
        return self

    def set_entry_point(self, key: str) -> "StateGraph":
        return self.add_edge(START, key)

    def set_conditional_entry_point(self, path: Any, path_map: Optional[Union[dict, list]] = None) -> "StateGraph":
        return self.add_conditional_edges(START, path, path_map)

    def set_finish_point(self, key: str) -> "StateGraph":
        return self.add_edge(key, END)

    # -- validation ------------------------------------------------------------
    def validate(self, interrupt: Sequence[str] = ()) -> None:
        sources = {s for s, _ in self.edges} | {s for starts, _ in self.waiting_edges for s in starts}
        sources |= set(self.branches)
        for source in sources:
            if source not in self.nodes and source != START:
                raise ValueError(f"Found edge starting at unknown node '{source}'")
        if START not in sources and not any(
            getattr(n.action, "__lgdist_command_destinations__", None) for n in self.nodes.values()
        ):
            raise ValueError("Graph must have an entrypoint: add at least one edge from START to another node")
        for _, target in self.edges:
            if target != END and target not in self.nodes:
                raise ValueError(f"Found edge ending at unknown node `{target}`")
        for source, branches in self.branches.items():
            for branch_name, branch in branches.items():
                if branch.ends is not None:
                    for end in branch.ends.values():
                        if end != END and end not in self.nodes:
                            raise ValueError(
                                f"At '{source}' node, '{branch_name}' branch found unknown target '{end}'"
                            )
        if interrupt and interrupt != "*":
            for node in interrupt:
                if node not in self.nodes:
                    raise ValueError(f"Interrupt node `{node}` not found")

    # -- compile ---------------------------------------------------------------
    def compile(
        self,
        checkpointer: Any = None,
        *,
        cache: Any = None,
        store: Any = None,
        interrupt_before: Optional[Union[str, Sequence[str]]] = None,
        interrupt_after: Optional[Union[str, Sequence[str]]] = None,
        debug: bool = False,
        name: Optional[str] = None,
    ) -> "CompiledStateGraph":
        """Validate the graph and compile it into a runnable graph."""
        from lgdist.graph.compiled import CompiledStateGraph

        interrupt_before = interrupt_before or []
        interrupt_after = interrupt_after or []
        self.validate(
            interrupt=(interrupt_before if interrupt_before != "*" else [])
            + (interrupt_after if interrupt_after != "*" else [])
        )
        self.compiled = True
        spec = self._build_spec(interrupt_before, interrupt_after)
        spec.cache = cache
        return CompiledStateGraph(
            builder=self,
            spec=spec,
            checkpointer=checkpointer,
            store=store,
            debug=debug,
            name=name or "LangGraph",
        )

    # Hooks MessageGraph overrides -------------------------------------------
    def _state_keys(self) -> list[str]:
        return list(self.channels)

    def _output_keys(self) -> Any:
        return list(schema_hints(self.output_schema)) or self._state_keys()

    def _input_keys(self) -> list[str]:
        return list(schema_hints(self.input_schema)) or self._state_keys()

    def _read_state(self, channels: Mapping[str, BaseChannel], schema: Any, keys: Sequence[str]) -> Any:
        values = {}
        for key in keys:
            chan = channels.get(key)
            if chan is not None and chan.is_available():
                values[key] = chan.get()
        return coerce_to_schema(schema, values)

    def _updates_from_output(self, node: str, output: Any) -> list[Write]:
        keys = self._state_keys()
        as_dict = state_to_dict(output)
        if as_dict is None:
            raise InvalidUpdateError(
                create_error_message(
                    message=f"Expected dict, got {output}",
                    error_code=ErrorCode.INVALID_GRAPH_NODE_RETURN_VALUE,
                )
            )
        return [(k, v) for k, v in as_dict.items() if k in keys]

    def _updates_from_input(self, value: Any) -> list[Write]:
        keys = self._input_keys()
        as_dict = state_to_dict(value)
        if as_dict is None:
            raise InvalidUpdateError(
                create_error_message(
                    message=f"Expected dict, got {value}",
                    error_code=ErrorCode.INVALID_GRAPH_NODE_RETURN_VALUE,
                )
            )
        if self.input_schema is not None and hasattr(self.input_schema, "model_validate") and as_dict:
            self.input_schema.model_validate(as_dict)  # raises pydantic's ValidationError
        return [(k, v) for k, v in as_dict.items() if k in keys]

    # -- spec ------------------------------------------------------------------
    def _build_spec(self, interrupt_before: Any, interrupt_after: Any) -> GraphSpec:
        channels: dict[str, BaseChannel] = dict(self.channels)
        channels[START] = EphemeralValue(Any, key=START)
        channels[TASKS] = Topic(Send, key=TASKS)
        for name, node in self.nodes.items():
            # A deferred node's triggers become available only when the run
            # would otherwise end.
            channels[trigger_channel(name)] = (
                LastValueAfterFinish(Any, key=trigger_channel(name))
                if node.defer
                else EphemeralValue(Any, guard=False, key=trigger_channel(name))
            )
        joins: dict[str, list[tuple[str, str]]] = defaultdict(list)  # source -> [(channel, end)]
        join_triggers: dict[str, list[str]] = defaultdict(list)
        for starts, end in sorted(self.waiting_edges):
            chan = f"join:{'+'.join(starts)}:{end}"
            barrier = NamedBarrierValueAfterFinish if self.nodes[end].defer else NamedBarrierValue
            channels[chan] = barrier(str, names=starts, key=chan)
            join_triggers[end].append(chan)
            for start in starts:
                joins[start].append((chan, start))

        known = set(self.nodes)
        nodes: dict[str, NodeSpec] = {}
        state_keys = self._state_keys()
        nodes[START] = NodeSpec(
            name=START,
            # Not a run of its own in the callback tree (as in LangGraph).
            bound=NodeRunnable(lambda x: x, START, trace=False),
            triggers=(START,),
            read_input=lambda chans: chans[START].get(),
            write_output=self._make_writer(START, joins, known, from_input=True),
            hidden=True,
            tags=(TAG_HIDDEN,),
        )
        for name, node in self.nodes.items():
            # A node reads its schema's keys (the state schema's when it
            # declares none): not the input/output-only or private keys.
            schema = node.input_schema or self.state_schema
            keys = list(schema_hints(schema)) or state_keys
            nodes[name] = NodeSpec(
                name=name,
                bound=as_node(node.action, name),
                triggers=(trigger_channel(name), *join_triggers.get(name, [])),
                read_input=self._make_reader(schema, keys),
                write_output=self._make_writer(name, joins, known),
                retry_policy=as_policies(node.retry_policy),
                metadata=node.metadata,
                is_subgraph=node.is_subgraph,
                subgraph=find_subgraph(node.action),
                cache_policy=node.cache_policy,
            )
        return GraphSpec(
            channels=channels,
            nodes=nodes,
            input_channel=START,
            output_keys=self._output_keys(),
            stream_keys=self._state_keys(),
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
        )

    def _make_reader(self, schema: Any, keys: Sequence[str]) -> Callable:
        def read(chans: Mapping[str, BaseChannel]) -> Any:
            return self._read_state(chans, schema, keys)

        return read

    def _make_writer(
        self,
        name: str,
        joins: Mapping[str, list[tuple[str, str]]],
        known: set[str],
        *,
        from_input: bool = False,
    ) -> Callable:
        static_ends = sorted(end for start, end in self.edges if start == name)
        branches = list(self.branches.get(name, {}).values())
        join_writes = list(joins.get(name, []))
        state_keys = self._state_keys()
        state_schema = self.state_schema
        message_keys = {
            key for key, chan in self.channels.items() if getattr(chan, "operator", None) is add_messages
        }

        def writes_of(output: Any, read_fresh: Callable) -> Generator[tuple, list[Write], list[Write]]:
            # Yields (branch, state, config) for each conditional edge to
            # route and receives its writes: the sync and async writers
            # below route with branch.route / await branch.aroute.
            writes: list[Write] = []
            gotos: list[Any] = []
            # A Command, or a list holding at least one Command (ToolNode's
            # output when a tool returns one): each Command gives its update
            # and goto, each other item is an ordinary update.
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
                            writes.extend(self._updates_from_output(name, part))
                        continue
                    if part.graph == Command.PARENT:
                        from lgdist.errors import ParentCommand

                        raise ParentCommand(part)
                    if part.update is not None:
                        writes.extend(self._command_update(part))
                    goto = part.goto
                    if goto:
                        gotos.extend(goto if isinstance(goto, (list, tuple)) else [goto])
            elif from_input:
                writes.extend(self._updates_from_input(output))
            elif output is not None:
                writes.extend(self._updates_from_output(name, output))
            if message_keys:
                _assign_message_ids(writes, message_keys)

            writes.extend((trigger_channel(end), None) for end in static_ends if end != END)
            writes.extend((chan, start) for chan, start in join_writes)
            if gotos:
                writes.extend(destinations_to_writes(gotos, known))
            if branches:
                from lgdist.engine.task_context import maybe_task_context

                ctx = maybe_task_context()
                config = ctx.config if ctx else {}
                fresh = read_fresh(writes)
                state = self._read_state(fresh, state_schema, state_keys)
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

    def _command_update(self, cmd: Command) -> list[Write]:
        keys = self._state_keys()
        return [(k, v) for k, v in cmd._update_as_tuples() if k in keys]


from lgdist.graph.compiled import CompiledStateGraph  # noqa: E402  (re-export for type hints)


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
