"""``astream_events(version="v2")`` and the callback run tree: the graph's
own run at the root, one chain run per node with LangGraph's metadata, a
chat model's runs inside its node, parents and tags as LangGraph has them
(run ids are compared only as structure: numbered by first appearance)."""

import operator
from typing import Annotated, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from typing_extensions import TypedDict

from lgdist.testing import ScriptedChatModel

from .harness import differential, thread


def _messages_state(ns):
    class Chat(TypedDict):
        messages: Annotated[list, ns.add_messages]
        note: str

    return Chat


def _prepare(state):
    return {"note": "prepared"}


def build_chat_graph(ns, checkpointer=None):
    """Two nodes: one plain, one calling a chat model with its config."""
    model = ScriptedChatModel(responses=["hello there friend"], cycle=True)

    def call_model(state, config):
        return {"messages": [model.invoke(state["messages"], config)]}

    g = ns.StateGraph(_messages_state(ns))
    g.add_node("prepare", _prepare)
    g.add_node("call_model", call_model)
    g.add_edge(ns.START, "prepare")
    g.add_edge("prepare", "call_model")
    return g.compile(checkpointer=checkpointer)


def build_async_chat_graph(ns):
    model = ScriptedChatModel(responses=["async words here"], cycle=True)

    async def call_model(state):
        return {"messages": [await model.ainvoke(state["messages"])]}

    g = ns.StateGraph(_messages_state(ns))
    g.add_node("prepare", _prepare)
    g.add_node("call_model", call_model)
    g.add_edge(ns.START, "prepare")
    g.add_edge("prepare", "call_model")
    return g.compile()


def _event(e: dict) -> dict:
    return {
        "event": e["event"],
        "name": e["name"],
        "run_id": e["run_id"],
        "parent_ids": e["parent_ids"],
        "tags": sorted(e.get("tags") or []),
        "metadata": e["metadata"],
        "data": e["data"],
    }


async def _events(graph, input, config=None, **kwargs):
    return [_event(e) async for e in graph.astream_events(input, config, version="v2", **kwargs)]


@differential
async def test_astream_events_of_a_graph_with_a_chat_model(ns):
    graph = build_chat_graph(ns)
    return await _events(graph, {"messages": [HumanMessage("hi", id="h-1")]})


@differential
async def test_astream_events_async_nodes_and_a_checkpointer(ns):
    async_graph = build_async_chat_graph(ns)
    saved = build_chat_graph(ns, ns.InMemorySaver())
    return {
        "async_nodes": await _events(async_graph, {"messages": [HumanMessage("hi", id="h-1")]}),
        "checkpointer": await _events(saved, {"messages": [HumanMessage("hi", id="h-1")]}, thread("events")),
    }


@differential
async def test_astream_events_filters(ns):
    graph = build_chat_graph(ns)
    inp = {"messages": [HumanMessage("hi", id="h-1")]}
    return {
        "chat_only": await _events(graph, inp, include_types=["chat_model"]),
        "by_name": await _events(graph, inp, include_names=["prepare"]),
    }


class _Runs(BaseCallbackHandler):
    """Chain and chat model runs as a callback handler sees them."""

    def __init__(self) -> None:
        self.runs: list = []

    def _add(self, kind: str, run_id: UUID, parent_run_id: Any, **kwargs: Any) -> None:
        self.runs.append(
            {
                "kind": kind,
                "name": kwargs.get("name"),
                "run": str(run_id),
                "parent": str(parent_run_id) if parent_run_id else None,
                "tags": sorted(kwargs.get("tags") or []),
                "metadata": kwargs.get("metadata"),
            }
        )

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs):
        self._add("chain_start", run_id, parent_run_id, **kwargs)

    def on_chain_end(self, outputs, *, run_id, parent_run_id=None, **kwargs):
        self.runs.append({"kind": "chain_end", "run": str(run_id), "outputs": outputs})

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kwargs):
        self._add("chat_model_start", run_id, parent_run_id, **kwargs)


@differential
def test_callback_run_tree_of_invoke_and_stream(ns):
    graph = build_chat_graph(ns)
    inp = {"messages": [HumanMessage("hi", id="h-1")]}
    on_invoke = _Runs()
    graph.invoke(inp, {"callbacks": [on_invoke], "tags": ["mine"], "metadata": {"user": "ada"}})
    on_stream = _Runs()
    list(graph.stream(inp, {"callbacks": [on_stream], "run_name": "my graph"}, stream_mode="updates"))
    return {"invoke": on_invoke.runs, "stream": on_stream.runs}


class Count(TypedDict):
    n: int
    log: Annotated[list, operator.add]


def build_nested(ns):
    """A subgraph as a node, a parallel step and a Send."""
    sub = ns.StateGraph(Count)
    sub.add_node("inner", lambda s: {"log": ["inner"]})
    sub.add_edge(ns.START, "inner")
    subgraph = sub.compile(name="sub")

    g = ns.StateGraph(Count)
    g.add_node("child", subgraph)
    g.add_node("left", lambda s: {"log": ["left"]})
    g.add_node("right", lambda s: {"log": ["right"]})
    g.add_node("each", lambda item: {"log": [f"each {item}"]})
    g.add_edge(ns.START, "child")
    g.add_edge("child", "left")
    g.add_edge("child", "right")
    g.add_conditional_edges("left", lambda s: [ns.Send("each", i) for i in range(2)], ["each"])
    return g.compile()


@differential
async def test_astream_events_of_subgraphs_parallel_nodes_and_sends(ns):
    graph = build_nested(ns)
    events = await _events(graph, {"n": 0, "log": []})
    # Parallel tasks' events interleave in any order: compare each run's
    # own events, and the tree.
    by_run: dict = {}
    for e in events:
        by_run.setdefault(e["run_id"], []).append(e)
    return {
        "first": events[0],
        "last": events[-1],
        "runs": sorted(
            ([(e["event"], e["name"], e["parent_ids"], e["tags"], e["metadata"].get("langgraph_node")) for e in evs]
             for evs in by_run.values()),
            key=repr,
        ),
    }


@differential
async def test_astream_events_of_an_interrupted_run_and_its_resume(ns):
    g = ns.StateGraph(Count)
    g.add_node("ask", lambda s: {"n": ns.interrupt("how many?")})
    g.add_node("done", lambda s: {"log": [f"got {s['n']}"]})
    g.add_edge(ns.START, "ask")
    g.add_edge("ask", "done")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread("interrupted")
    first = await _events(graph, {"n": 0, "log": []}, cfg)
    second = await _events(graph, ns.Command(resume=3), cfg)
    return {"first": first, "second": second}


def build_agent(ns):
    """A chat model node calling a tool through ToolNode and tools_condition."""
    from lgdist.testing import fake_search

    model = ScriptedChatModel().bind_tools([fake_search])

    def agent(state):
        return {"messages": [model.invoke(state["messages"])]}

    g = ns.StateGraph(_messages_state(ns))
    g.add_node("agent", agent)
    g.add_node("tools", ns.ToolNode([fake_search]))
    g.add_edge(ns.START, "agent")
    g.add_conditional_edges("agent", ns.tools_condition)
    g.add_edge("tools", "agent")
    return g.compile()


@differential
async def test_astream_events_of_an_agent_with_a_tool_node(ns):
    graph = build_agent(ns)
    events = await _events(graph, {"messages": [HumanMessage("weather in sf", id="q1")]})
    return [(e["event"], e["name"], e["parent_ids"], e["tags"], e["metadata"].get("langgraph_node")) for e in events]


@differential
async def test_astream_events_v1_and_astream_log(ns):
    graph = build_chat_graph(ns)
    inp = {"messages": [HumanMessage("hi", id="h-1")]}
    v1 = [(e["event"], e["name"], sorted(e.get("tags") or [])) async for e in graph.astream_events(inp, version="v1")]
    patches = [p async for p in graph.astream_log(inp)]
    return {"v1": v1, "log_paths": [[op["path"] for op in p.ops] for p in patches]}
