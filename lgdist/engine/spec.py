"""What the engine needs to know about a compiled graph.

``GraphSpec`` is produced by ``StateGraph.compile()`` (or ``MessageGraph``)
and consumed by the planner, the step applier and both runtimes. It holds
plain values and callables; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from lgdist.engine.channels import BaseChannel

# A write is (channel name, value).
Write = tuple[str, Any]


@dataclass
class NodeSpec:
    """One node: which channels trigger it, how its input is read and how its
    output becomes channel writes (state updates plus routing)."""

    name: str
    # Called as bound.invoke(input, config) / await bound.ainvoke(...).
    bound: Any
    triggers: tuple[str, ...]
    # read_input(channels) -> the value the node receives.
    read_input: Callable[[Mapping[str, BaseChannel]], Any]
    # write_output(output, read_fresh) -> writes; read_fresh(writes) gives the
    # state as this task sees it after its own writes (for conditional edges).
    write_output: Callable[[Any, Callable[[Sequence[Write]], Any]], list[Write]]
    # The node's RetryPolicy list: the first whose retry_on matches applies.
    retry_policy: tuple = ()
    metadata: dict = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    hidden: bool = False
    is_subgraph: bool = False
    # The compiled graph this node runs (as the node itself, or called from
    # the node's function), if any: get_state(subgraphs=True) reads its
    # checkpoints under the task's namespace.
    subgraph: Any = None
    # CachePolicy: runs with an equal key reuse cached writes (with a cache).
    cache_policy: Any = None


@dataclass
class GraphSpec:
    """The channels and nodes of a compiled graph, plus its I/O shape."""

    channels: dict[str, BaseChannel]
    nodes: dict[str, NodeSpec]
    # The channel the graph's input is written to; the keys of its output
    # and of its "values" stream.
    input_channel: str
    output_keys: Any  # str (single root channel) or list[str]
    stream_keys: Any
    interrupt_before: Sequence[str] | str = ()
    interrupt_after: Sequence[str] | str = ()
    # The cache of the nodes that have a cache_policy (compile(cache=...)).
    cache: Any = None
    # Triggers, precomputed: channel -> nodes it can trigger.
    trigger_to_nodes: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        index: dict[str, list[str]] = {}
        for name, node in self.nodes.items():
            for chan in node.triggers:
                index.setdefault(chan, []).append(name)
        self.trigger_to_nodes = index
