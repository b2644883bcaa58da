"""Compiling a :class:`~lgdist.graph.state.StateGraph` into the engine's
:class:`~lgdist.engine.spec.GraphSpec`: the channels its nodes, edges and
joins need, and one :class:`NodeSpec` per node."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from lgdist.constants import START, TAG_HIDDEN, TASKS
from lgdist.engine.channels import (
    BaseChannel,
    EphemeralValue,
    LastValueAfterFinish,
    NamedBarrierValue,
    NamedBarrierValueAfterFinish,
    Topic,
)
from lgdist.engine.spec import GraphSpec, NodeSpec
from lgdist.graph.branch import trigger_channel
from lgdist.graph.nesting import find_subgraph
from lgdist.graph.node import NodeRunnable, as_node
from lgdist.graph.node_writer import node_writer
from lgdist.graph.schema import schema_hints
from lgdist.retry import as_policies
from lgdist.types import Send

if TYPE_CHECKING:
    from lgdist.graph.state import StateGraph

# source node -> [(join channel, source)] it writes when it finishes
Joins = Mapping[str, list[tuple[str, str]]]


def build_spec(graph: "StateGraph", interrupt_before: Any, interrupt_after: Any) -> GraphSpec:
    """The spec the runtimes run ``graph`` by."""
    channels, joins, join_triggers = _graph_channels(graph)
    known = set(graph.nodes)
    nodes: dict[str, NodeSpec] = {}
    state_keys = graph._state_keys()
    nodes[START] = NodeSpec(
        name=START,
        # Not a run of its own in the callback tree (as in LangGraph).
        bound=NodeRunnable(lambda x: x, START, trace=False),
        triggers=(START,),
        read_input=lambda chans: chans[START].get(),
        write_output=node_writer(graph, START, joins, known, from_input=True),
        hidden=True,
        tags=(TAG_HIDDEN,),
    )
    for name, node in graph.nodes.items():
        # A node reads its schema's keys (the state schema's when it
        # declares none): not the input/output-only or private keys.
        schema = node.input_schema or graph.state_schema
        keys = list(schema_hints(schema)) or state_keys
        nodes[name] = NodeSpec(
            name=name,
            bound=as_node(node.action, name),
            triggers=(trigger_channel(name), *join_triggers.get(name, [])),
            read_input=_state_reader(graph, schema, keys),
            write_output=node_writer(graph, name, joins, known),
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
        output_keys=graph._output_keys(),
        stream_keys=graph._state_keys(),
        interrupt_before=interrupt_before,
        interrupt_after=interrupt_after,
    )


def _graph_channels(graph: "StateGraph") -> tuple[dict[str, BaseChannel], Joins, Mapping[str, list[str]]]:
    """The state channels plus START's, the Send topic, one trigger per node
    and one barrier per join; which joins each source writes, and which
    join channels trigger each node."""
    channels: dict[str, BaseChannel] = dict(graph.channels)
    channels[START] = EphemeralValue(Any, key=START)
    channels[TASKS] = Topic(Send, key=TASKS)
    for name, node in graph.nodes.items():
        # A deferred node's triggers become available only when the run
        # would otherwise end.
        channels[trigger_channel(name)] = (
            LastValueAfterFinish(Any, key=trigger_channel(name))
            if node.defer
            else EphemeralValue(Any, guard=False, key=trigger_channel(name))
        )
    joins: dict[str, list[tuple[str, str]]] = defaultdict(list)
    join_triggers: dict[str, list[str]] = defaultdict(list)
    for starts, end in sorted(graph.waiting_edges):
        chan = f"join:{'+'.join(starts)}:{end}"
        barrier = NamedBarrierValueAfterFinish if graph.nodes[end].defer else NamedBarrierValue
        channels[chan] = barrier(str, names=starts, key=chan)
        join_triggers[end].append(chan)
        for start in starts:
            joins[start].append((chan, start))
    return channels, joins, join_triggers


def _state_reader(graph: "StateGraph", schema: Any, keys: Sequence[str]) -> Callable:
    def read(chans: Mapping[str, BaseChannel]) -> Any:
        return graph._read_state(chans, schema, keys)

    return read
