"""``StateGraph``: the builder users add nodes and edges to, and the hooks
that say what its state is (``MessageGraph`` overrides them). Compiling it
into an engine spec is :mod:`lgdist.graph.compile_spec`."""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from lgdist.constants import END, RESERVED, START
from lgdist.engine.channels import BaseChannel
from lgdist.engine.spec import GraphSpec, Write
from lgdist.errors import ErrorCode, InvalidUpdateError, create_error_message
from lgdist.graph.branch import Branch
from lgdist.graph.compile_spec import build_spec
from lgdist.graph.compiled import CompiledStateGraph
from lgdist.graph.schema import channels_for_schema, node_input_schema, schema_classes, schema_hints
from lgdist.serde import allow_classes
from lgdist.state_objects import coerce_to_schema, state_to_dict
from lgdist.types import Command, RetryPolicy

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
        interrupt_before = interrupt_before or []
        interrupt_after = interrupt_after or []
        self.validate(
            interrupt=(interrupt_before if interrupt_before != "*" else [])
            + (interrupt_after if interrupt_after != "*" else [])
        )
        self.compiled = True
        # Stored state of this graph may name these classes (lgdist.serde's allowlist).
        allow_classes(*schema_classes(
            self.state_schema, self.input_schema, self.output_schema, self.context_schema,
            *(node.input_schema for node in self.nodes.values()),
        ))
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
        return [(k, v) for k, v in _update_dict(output).items() if k in keys]

    def _updates_from_input(self, value: Any) -> list[Write]:
        keys = self._input_keys()
        as_dict = _update_dict(value)
        if self.input_schema is not None and hasattr(self.input_schema, "model_validate") and as_dict:
            self.input_schema.model_validate(as_dict)  # raises pydantic's ValidationError
        return [(k, v) for k, v in as_dict.items() if k in keys]

    def _build_spec(self, interrupt_before: Any, interrupt_after: Any) -> GraphSpec:
        return build_spec(self, interrupt_before, interrupt_after)

    def _command_update(self, cmd: Command) -> list[Write]:
        keys = self._state_keys()
        return [(k, v) for k, v in cmd._update_as_tuples() if k in keys]


def _update_dict(value: Any) -> dict:
    """A node's output (or the graph's input) as a dict of state updates."""
    as_dict = state_to_dict(value)
    if as_dict is None:
        raise InvalidUpdateError(
            create_error_message(
                message=f"Expected dict, got {value}",
                error_code=ErrorCode.INVALID_GRAPH_NODE_RETURN_VALUE,
            )
        )
    return as_dict
