"""``compiled.get_graph()``: the drawable langchain-core ``Graph`` of a
compiled graph, compared as its nodes (id, name, metadata), its edges
(source, target, label, conditional), ``draw_mermaid()`` and
``draw_ascii()``, for static and conditional edges (path maps, ``Literal``
return hints, no hint), joins, ``Send`` fan-outs, ``Command``
destinations, breakpoints, node metadata and subgraphs (``xray``)."""

import operator
from typing import Annotated, Literal

from langchain_core.messages import AIMessage
from typing_extensions import TypedDict

from lgdist.testing import fake_search

from .harness import capture, differential


class S(TypedDict):
    log: Annotated[list, operator.add]
    items: list


def noop(state: S):
    return {}


def route_literal(state: S) -> Literal["b", "c"]:
    return "b"


def route_literal_with_end(state: S) -> Literal["c", "__end__"]:
    return "c"


def route_unhinted(state: S):
    return "b"


def fan_out(state: S):
    return []


def drawing(graph, *, xray=False, ascii=True) -> dict:
    """What of ``graph.get_graph()`` must match. (grandalf lays out a graph
    with a cycle differently from run to run, LangGraph's too: ``ascii=False``
    leaves its drawing out.)"""
    g = graph.get_graph(xray=xray)
    out = {
        "nodes": [
            {"id": n.id, "name": n.name, "metadata": n.metadata, "has_data": n.data is not None}
            for n in g.nodes.values()
        ],
        "edges": [(e.source, e.target, e.data, e.conditional) for e in g.edges],
        "first": g.first_node().id if g.first_node() else None,
        "last": g.last_node().id if g.last_node() else None,
        "mermaid": g.draw_mermaid(),
    }
    if ascii:
        out["ascii"] = g.draw_ascii()
    return out


def build_static(ns):
    g = ns.StateGraph(S)
    g.add_node("a", noop)
    g.add_node("b", noop, metadata={"owner": "team", "n": 1})
    g.add_edge(ns.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", ns.END)
    return g


def build_no_end_edge(ns):
    g = ns.StateGraph(S)
    g.add_sequence([("a", noop), ("b", noop), ("c", noop)])
    g.add_edge(ns.START, "a")
    return g


def build_conditionals(ns):
    g = ns.StateGraph(S)
    for name in "abcd":
        g.add_node(name, noop)
    g.add_edge(ns.START, "a")
    g.add_conditional_edges("a", route_literal)
    g.add_conditional_edges("b", route_unhinted, {"x": "c", "y": ns.END, "d": "d"})
    g.add_edge("c", ns.END)
    g.add_edge("d", ns.END)
    return g


def build_path_list_and_literal_end(ns):
    g = ns.StateGraph(S)
    for name in "abc":
        g.add_node(name, noop)
    g.add_conditional_edges(ns.START, route_unhinted, ["a", "b"])
    g.add_conditional_edges("a", route_literal_with_end)
    g.add_edge("b", "c")
    return g


def build_unhinted_router(ns):
    g = ns.StateGraph(S)
    for name in "abc":
        g.add_node(name, noop)
    g.add_edge(ns.START, "a")
    g.add_conditional_edges("a", route_unhinted)
    g.add_edge("b", ns.END)
    return g


def build_join_and_fan_out(ns):
    g = ns.StateGraph(S)
    for name in ("split", "left", "right", "join", "worker"):
        g.add_node(name, noop)
    g.add_edge(ns.START, "split")
    g.add_edge("split", "left")
    g.add_edge("split", "right")
    g.add_edge(["left", "right"], "join")
    g.add_conditional_edges("join", fan_out, ["worker"])
    g.add_edge("worker", ns.END)
    return g


def build_commands(ns):
    def go(state: S) -> ns_command(ns)[Literal["b", "__end__"]]:
        return ns.Command(goto="b")

    def go_anywhere(state: S):
        return ns.Command(goto="c")

    g = ns.StateGraph(S)
    g.add_node("go", go)
    g.add_node("b", go_anywhere, destinations=("c", "go"))
    g.add_node("c", noop, destinations={"go": "again"})
    g.add_edge(ns.START, "go")
    return g


def ns_command(ns):
    return ns.Command


def build_subgraph_parent(ns):
    inner = ns.StateGraph(S)
    inner.add_node("inner_a", noop)
    inner.add_node("inner_b", noop)
    inner.add_edge(ns.START, "inner_a")
    inner.add_conditional_edges("inner_a", route_unhinted, {"b": "inner_b", "end": ns.END})
    compiled_inner = inner.compile()

    g = ns.StateGraph(S)
    g.add_node("prep", noop)
    g.add_node("sub", compiled_inner)
    g.add_node("after", noop)
    g.add_edge(ns.START, "prep")
    g.add_edge("prep", "sub")
    g.add_edge("sub", "after")
    return g


def build_deferred(ns):
    g = ns.StateGraph(S)
    g.add_node("a", noop)
    g.add_node("b", noop)
    g.add_node("agg", noop, defer=True)
    g.add_edge(ns.START, "a")
    g.add_edge(ns.START, "b")
    g.add_edge("a", "agg")
    g.add_edge("b", "agg")
    return g


SHAPES = {
    "static": build_static,
    "no_end_edge": build_no_end_edge,
    "conditionals": build_conditionals,
    "path_list_and_literal_end": build_path_list_and_literal_end,
    "unhinted_router": build_unhinted_router,
    "join_and_fan_out": build_join_and_fan_out,
    "commands": build_commands,
    "deferred": build_deferred,
}


@differential
def test_get_graph_of_each_shape(ns):
    return {name: drawing(build(ns).compile()) for name, build in SHAPES.items()}


@differential
def test_get_graph_marks_breakpoints(ns):
    g = build_conditionals(ns)
    return {
        "before_after": drawing(g.compile(interrupt_before=["b", "c"], interrupt_after=["c", "d"])),
        "all": drawing(g.compile(interrupt_before="*")),
    }


@differential
def test_get_graph_of_subgraphs_with_and_without_xray(ns):
    parent = build_subgraph_parent(ns).compile()
    return {
        "plain": drawing(parent),
        "xray": drawing(parent, xray=True),
        "xray_1": drawing(parent, xray=1),
    }


@differential
def test_get_graph_of_a_tool_agent(ns):
    def agent(state: ns.MessagesState):
        return {"messages": [AIMessage(content="done")]}

    g = ns.StateGraph(ns.MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ns.ToolNode([fake_search]))
    g.add_edge(ns.START, "agent")
    g.add_conditional_edges("agent", ns.tools_condition)
    g.add_edge("tools", "agent")
    return drawing(g.compile(), ascii=False)


def build_nested_and_called_subgraphs(ns):
    leaf = ns.StateGraph(S)
    leaf.add_node("leaf_a", noop)
    leaf.add_edge(ns.START, "leaf_a")
    compiled_leaf = leaf.compile()

    middle = ns.StateGraph(S)
    middle.add_node("mid_a", noop)
    middle.add_node("leaf", compiled_leaf)
    middle.add_edge(ns.START, "mid_a")
    middle.add_edge("mid_a", "leaf")
    compiled_middle = middle.compile()

    def calls_middle(state: S):
        return compiled_middle.invoke(state)

    g = ns.StateGraph(S)
    g.add_node("middle", compiled_middle)
    g.add_node("calls_middle", calls_middle)
    g.add_edge(ns.START, "middle")
    g.add_edge("middle", "calls_middle")
    return g


@differential
def test_get_graph_xray_depth_and_subgraphs_called_from_a_node(ns):
    graph = build_nested_and_called_subgraphs(ns).compile()
    return {depth: drawing(graph, xray=depth) for depth in (False, 1, 2, True)}


def seed_agent(messages):
    return AIMessage(content="done")


def seed_should_continue(messages):
    return "end"


def build_seed_message_graph(ns):
    g = ns.MessageGraph()
    g.add_node("agent", seed_agent)
    g.add_node("action", seed_agent)
    g.set_entry_point("agent")
    g.add_conditional_edges("agent", seed_should_continue, {"continue": "action", "end": ns.END})
    g.add_edge("action", "agent")
    return g


@differential
def test_get_graph_and_json_schemas_of_the_seed_message_graph(ns):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LangGraph deprecates MessageGraph
        graph = build_seed_message_graph(ns).compile(interrupt_before=["action"])
    return {
        "drawing": drawing(graph, ascii=False),
        "input_schema": graph.get_input_jsonschema(),
        "output_schema": graph.get_output_jsonschema(),
        "input_model": graph.get_input_schema().model_json_schema(),
        "output_model": graph.get_output_schema().model_json_schema(),
    }


def route_to_missing(state: S) -> Literal["missing", "a"]:
    return "a"


@differential
def test_a_literal_hint_naming_an_unknown_node_fails_compile(ns):
    g = ns.StateGraph(S)
    g.add_node("a", noop)
    g.add_edge(ns.START, "a")
    g.add_conditional_edges("a", route_to_missing)
    named = ns.StateGraph(S)
    named.add_node("a", noop)
    named.add_edge(ns.START, "a")
    named.add_conditional_edges("a", route_unhinted, {"x": "missing"})
    return {"literal": capture(g.compile), "path_map": capture(named.compile)}
