"""``compiled.get_graph()``: a compiled graph as langchain-core's drawable
``Graph`` (``draw_mermaid()``, ``draw_ascii()``, ``draw_png()``), with the
structure LangGraph draws.

The edges are found the way LangGraph finds them: by walking the graph's
supersteps from ``START`` with every routing choice taken at once (each
static edge, each target a conditional edge's path map or ``Literal``
return hint names, each ``Command`` destination a node declares, and a join
once all its sources ran). So only what can be reached from ``START`` is
connected; a router with no path map and no hint contributes no edge, and
its node is then drawn as ending the graph.
"""

from __future__ import annotations

from typing import Any, Iterable, Literal, NamedTuple, Optional, Union, get_args, get_origin

from langchain_core.runnables.graph import Graph

from lgdist.constants import END, START
from lgdist.graph.schema import return_hint

__all__ = ["draw_graph", "command_destinations"]

# LangGraph stops its walk after this many supersteps.
_STEP_LIMIT = 250


class _Edge(NamedTuple):
    source: str
    target: str
    conditional: bool
    label: Any


def command_destinations(node: Any) -> Union[tuple, dict]:
    """Where a node says its ``Command`` may go: its ``destinations``
    argument (a tuple of nodes, or a dict of node -> edge label), else the
    ``Literal`` in a ``Command[Literal[...]]`` return hint."""
    if node.destinations is not None:
        return node.destinations
    hint = return_hint(node.action)
    if hint is None:
        return ()
    if get_origin(hint) is Union:
        hint = next((a for a in get_args(hint) if _is_command(get_origin(a))), hint)
    if _is_command(get_origin(hint)) and get_args(hint) and get_origin(get_args(hint)[0]) is Literal:
        return get_args(get_args(hint)[0])
    return ()


def _is_command(origin: Any) -> bool:
    return isinstance(origin, type) and origin.__name__ == "Command"


def _outgoing(builder: Any) -> dict[str, list[_Edge]]:
    """Every edge a node may take, by source: static edges, conditional
    edges' targets and Command destinations (joins aside)."""
    out: dict[str, list[_Edge]] = {}
    for source, target in builder.edges:
        out.setdefault(source, []).append(_Edge(source, target, False, None))
    for source, branches in builder.branches.items():
        for branch in branches.values():
            for label, target in (branch.ends or {}).items():
                out.setdefault(source, []).append(_Edge(source, target, True, label))
    for name, node in builder.nodes.items():
        ends = command_destinations(node)
        pairs = ends.items() if isinstance(ends, dict) else ((end, end) for end in ends)
        for target, label in pairs:
            out.setdefault(name, []).append(_Edge(name, target, True, label))
    return out


def _walk(builder: Any) -> tuple[set[_Edge], list[str]]:
    """The edges met walking the supersteps from START, and the nodes of
    the last step walked."""
    outgoing = _outgoing(builder)
    joins = sorted(builder.waiting_edges)
    arrived: dict[tuple, set[str]] = {join: set() for join in joins}
    edges: set[_Edge] = set()
    step = [START]
    last: list[str] = []
    for _ in range(_STEP_LIMIT + 1):
        if not step:
            break
        last = step
        triggered: dict[str, None] = {}
        for name in step:
            for edge in outgoing.get(name, ()):
                edges.add(edge)
                if edge.target != END:
                    triggered[edge.target] = None
            for join in joins:
                if name in join[0]:
                    arrived[join].add(name)
        for join in joins:
            starts, end = join
            if arrived[join] >= set(starts):
                arrived[join] = set()
                edges.update(_Edge(start, end, False, None) for start in starts)
                triggered[end] = None
        step = [n for n in builder.nodes if n in triggered]
    return edges, last


def _add_edge(graph: Graph, source: str, target: str, *, data: Any = None, conditional: bool = False) -> None:
    """One edge per (source, target): the first added wins."""
    if any(e.source == source and e.target == target for e in graph.edges):
        return
    if target == END and END not in graph.nodes:
        graph.add_node(None, END)
    graph.add_edge(graph.nodes[source], graph.nodes[target], data, conditional)


def _node_metadata(name: str, node_spec: Any, node_def: Any, compiled: Any) -> Optional[dict]:
    metadata = dict(getattr(node_def, "metadata", None) or {})
    if getattr(node_def, "defer", False):
        metadata["defer"] = True
    before, after = compiled.spec.interrupt_before or (), compiled.spec.interrupt_after or ()
    # Membership as LangGraph tests it: with "*" no node is marked.
    if name in before and name in after:
        metadata["__interrupt"] = "before,after"
    elif name in before:
        metadata["__interrupt"] = "before"
    elif name in after:
        metadata["__interrupt"] = "after"
    tools = getattr(node_spec.bound, "tools_by_name", None)
    if isinstance(tools, dict) and tools:
        metadata["__tools"] = list(tools)
    return metadata or None


def _inline(graph: Graph, name: str, subgraph: Graph) -> None:
    """Replace node ``name`` by ``subgraph``'s nodes (ids prefixed
    ``name:``), its edges re-pointed at the subgraph's first/last node."""
    if not (len(subgraph.nodes) > 1 and name in graph.nodes and subgraph.first_node() and subgraph.last_node()):
        return
    subgraph.trim_first_node()
    subgraph.trim_last_node()
    graph.nodes.pop(name)
    first, last = graph.extend(subgraph, prefix=name)
    for index, edge in enumerate(graph.edges):
        if edge.source == name:
            edge = edge.copy(source=last.id)
        if edge.target == name:
            edge = edge.copy(target=first.id)
        graph.edges[index] = edge


def draw_graph(compiled: Any, *, xray: Union[bool, int] = False, config: Any = None) -> Graph:
    """The drawable graph of ``compiled`` (a ``CompiledStateGraph``); with
    ``xray`` (True, or a depth) subgraph nodes are drawn as their graphs."""
    builder = compiled.builder
    edges, last_step = _walk(builder)
    graph = Graph()
    for name, node_spec in compiled.spec.nodes.items():
        node_def = builder.nodes.get(name)
        graph.add_node(node_spec.bound, name, metadata=_node_metadata(name, node_spec, node_def, compiled))
    for source, target, conditional, label in sorted(edges, key=_edge_order):
        _add_edge(graph, source, target, data=label if label != target else None, conditional=conditional)
    targets = {e.target for e in edges if e.target != END}
    termini = sorted(targets - {e.source for e in edges})
    if termini:
        for source in termini:
            _add_edge(graph, source, END)
    elif len(last_step) == 1 and not any(e.target == END for e in edges):
        _add_edge(graph, last_step[0], END, conditional=True)
    if xray:
        depth = xray if isinstance(xray, bool) or xray <= 0 else xray - 1
        for name, sub in _subgraphs(compiled):
            _inline(graph, name, sub.get_graph(config, xray=depth))
    return graph


def _subgraphs(compiled: Any) -> Iterable[tuple[str, Any]]:
    for name, node_spec in compiled.spec.nodes.items():
        if node_spec.subgraph is not None and hasattr(node_spec.subgraph, "get_graph"):
            yield name, node_spec.subgraph


def _edge_order(edge: _Edge) -> tuple:
    # Edges sort by source, target, conditional, then label (labels of
    # mixed types compare by their text).
    return (edge.source, edge.target, edge.conditional, "" if edge.label is None else str(edge.label))
