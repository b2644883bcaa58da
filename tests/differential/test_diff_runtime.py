"""The graph as a Runnable: config to nodes, subgraphs, async, batch; the
seed's MessageGraph agent and a ToolNode agent."""

import asyncio
import operator
from typing import Annotated

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from typing_extensions import TypedDict

from lgdist.testing import ScriptedChatModel, fake_search

from .harness import Unordered, acapture, capture, differential, thread
from .observe import history, snapshot, stream


class Log(TypedDict):
    log: Annotated[list, operator.add]


@differential
def test_config_reaches_nodes_and_routers(ns):
    def node(state: Log, config):
        meta = config["metadata"]
        return {
            "log": [
                {
                    "user": config["configurable"].get("user"),
                    "node": meta["langgraph_node"],
                    "step": meta["langgraph_step"],
                    "triggers": list(meta["langgraph_triggers"]),
                    "path": list(meta["langgraph_path"]),
                    "has_tags": "tags" in config,
                    "tags": config.get("tags"),
                    "custom_metadata": meta.get("origin"),
                }
            ]
        }

    def via_get_config(state: Log):
        config = ns.get_config()
        return {"log": [("get_config", config["configurable"].get("user"), config["metadata"]["langgraph_node"])]}

    def route(state: Log, config):
        return "via_get_config" if config["configurable"].get("user") == "ada" else ns.END

    g = ns.StateGraph(Log)
    g.add_node("node", node)
    g.add_node("via_get_config", via_get_config)
    g.add_edge(ns.START, "node")
    g.add_conditional_edges("node", route)
    graph = g.compile()
    cfg = {"configurable": {"user": "ada"}, "tags": ["t1"], "metadata": {"origin": "test"}}
    return {
        "ada": graph.invoke({"log": []}, cfg),
        "bob": graph.invoke({"log": []}, {"configurable": {"user": "bob"}}),
        "stream": stream(graph, {"log": []}, cfg, stream_mode="updates"),
    }


@differential
def test_subgraph_as_a_node(ns):
    class Inner(TypedDict):
        text: str
        log: Annotated[list, operator.add]

    inner = ns.StateGraph(Inner)
    inner.add_node("upper", lambda s: {"text": s["text"].upper(), "log": ["inner.upper"]})
    inner.add_node("exclaim", lambda s: {"text": s["text"] + "!", "log": ["inner.exclaim"]})
    inner.add_edge(ns.START, "upper")
    inner.add_edge("upper", "exclaim")
    compiled_inner = inner.compile()

    class Outer(TypedDict):
        text: str
        log: Annotated[list, operator.add]
        other: str

    outer = ns.StateGraph(Outer)
    outer.add_node("prep", lambda s: {"text": s["text"].strip(), "log": ["prep"]})
    outer.add_node("inner", compiled_inner)
    outer.add_node("after", lambda s: {"other": "seen " + s["text"], "log": ["after"]})
    outer.add_edge(ns.START, "prep")
    outer.add_edge("prep", "inner")
    outer.add_edge("inner", "after")
    graph = outer.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    return {
        "invoke": graph.invoke({"text": "  hi  ", "log": []}, cfg),
        "updates": stream(graph, {"text": " yo ", "log": []}, thread(), stream_mode="updates"),
        "values": stream(graph, {"text": " yo ", "log": []}, thread(), stream_mode="values"),
        "state": snapshot(graph, cfg),
        "history": history(graph, cfg),
        "subgraph_alone": compiled_inner.invoke({"text": "a"}),
    }


@differential
def test_subgraph_called_inside_a_node_function(ns):
    class Inner(TypedDict):
        n: int

    inner = ns.StateGraph(Inner)
    inner.add_node("double", lambda s: {"n": s["n"] * 2})
    inner.add_edge(ns.START, "double")
    compiled_inner = inner.compile()

    class Outer(TypedDict):
        n: int
        log: Annotated[list, operator.add]

    def call(state: Outer):
        result = compiled_inner.invoke({"n": state["n"]})
        return {"n": result["n"], "log": [result]}

    outer = ns.StateGraph(Outer)
    outer.add_node("call", call)
    outer.add_edge(ns.START, "call")
    return {"invoke": outer.compile().invoke({"n": 21, "log": []})}


def async_graph(ns, checkpointer=None):
    async def fetch(state: Log):
        await asyncio.sleep(0)
        return {"log": ["fetch"]}

    def sync_node(state: Log):
        return {"log": ["sync"]}

    async def slow(state: Log):
        await asyncio.sleep(0.01)
        return {"log": ["slow"]}

    g = ns.StateGraph(Log)
    g.add_node("fetch", fetch)
    g.add_node("sync_node", sync_node)
    g.add_node("slow", slow)
    g.add_edge(ns.START, "fetch")
    g.add_edge("fetch", "sync_node")
    g.add_edge("fetch", "slow")
    return g.compile(checkpointer=checkpointer)


@differential
async def test_async_ainvoke_and_astream(ns):
    graph = async_graph(ns, ns.InMemorySaver())
    cfg = thread()
    out = await graph.ainvoke({"log": []}, cfg)
    chunks = [c async for c in graph.astream({"log": []}, thread(), stream_mode="updates")]
    values = [c async for c in graph.astream({"log": []}, thread(), stream_mode="values")]
    state = await graph.aget_state(cfg)
    return {
        "ainvoke": {**out, "log": sorted(out["log"])},
        "astream_updates": [chunks[0], Unordered(chunks[1:])],
        "astream_values_count": len(values),
        "final_value_log": sorted(values[-1]["log"]),
        "aget_state_next": state.next,
    }


@differential
async def test_async_interrupt_and_resume(ns):
    class S(TypedDict):
        answer: str

    async def ask(state: S):
        return {"answer": ns.interrupt("question")}

    g = ns.StateGraph(S)
    g.add_node("ask", ask)
    g.add_edge(ns.START, "ask")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    first = await graph.ainvoke({"answer": ""}, cfg)
    second = [c async for c in graph.astream(ns.Command(resume="42"), cfg, stream_mode="updates")]
    failing = await acapture(graph.ainvoke(None, thread()))
    return {"first": first, "second": second, "failing": failing, "state": snapshot(graph, cfg)}


@differential
def test_batch_and_abatch(ns):
    class S(TypedDict):
        n: int

    def double(state: S):
        if state["n"] < 0:
            raise ValueError("negative")
        return {"n": state["n"] * 2}

    g = ns.StateGraph(S)
    g.add_node("double", double)
    g.add_edge(ns.START, "double")
    graph = g.compile()
    inputs = [{"n": 1}, {"n": 2}, {"n": 3}]
    with_error = graph.batch([{"n": 1}, {"n": -1}], return_exceptions=True)
    return {
        "batch": graph.batch(inputs),
        "abatch": asyncio.run(graph.abatch(inputs)),
        "with_error": [capture(lambda r=r: r) if not isinstance(r, Exception) else {"raised": type(r).__name__, "message": str(r)} for r in with_error],
        "batch_raises": capture(lambda: graph.batch([{"n": -1}])),
    }


@pytest.mark.filterwarnings("ignore:MessageGraph is deprecated")
@differential
def test_seed_message_graph_with_tool_node_and_interrupt_before(ns):
    """LangGraph's README example of its MessageGraph days: a model that
    calls a search tool, a ToolNode, interrupt_before the tools."""
    model = ScriptedChatModel().bind_tools([fake_search])

    def should_continue(messages):
        last = messages[-1]
        return "action" if last.tool_calls else ns.END

    g = ns.MessageGraph()
    g.add_node("agent", model)
    g.add_node("action", ns.ToolNode([fake_search]))
    g.set_entry_point("agent")
    g.add_conditional_edges("agent", should_continue)
    g.add_edge("action", "agent")
    graph = g.compile(checkpointer=ns.InMemorySaver(), interrupt_before=["action"])
    cfg = thread()
    first = stream(graph, [HumanMessage(content="what is the weather in sf", id="q1")], cfg, stream_mode="values")
    paused = snapshot(graph, cfg)
    rest = stream(graph, None, cfg, stream_mode="values")
    return {
        "first": first,
        "paused": paused,
        "rest": rest,
        "final": snapshot(graph, cfg),
        "history": history(graph, cfg),
        "updates_mode": stream(
            graph, [HumanMessage(content="weather in Paris?", id="q2")], thread(), stream_mode="updates"
        ),
    }


@differential
def test_messages_state_agent_with_tool_node_and_tools_condition(ns):
    model = ScriptedChatModel().bind_tools([fake_search])

    def agent(state):
        return {"messages": [model.invoke(state["messages"])]}

    g = ns.StateGraph(ns.MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ns.ToolNode([fake_search]))
    g.add_edge(ns.START, "agent")
    g.add_conditional_edges("agent", ns.tools_condition)
    g.add_edge("tools", "agent")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    out = graph.invoke({"messages": [HumanMessage(content="weather in sf?", id="q1")]}, cfg)
    second = graph.invoke({"messages": [HumanMessage(content="and in nyc?", id="q2")]}, cfg)
    return {
        "out": out,
        "second": second,
        "updates": stream(graph, {"messages": [("user", "weather in Rome")]}, thread(), stream_mode="updates"),
        "history": history(graph, cfg),
    }


@differential
def test_new_input_on_an_interrupted_thread(ns):
    class S(TypedDict):
        log: Annotated[list, operator.add]

    def ask(state: S):
        return {"log": [ns.interrupt("go?")]}

    g = ns.StateGraph(S)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("ask", ask)
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_edge(ns.START, "a")
    g.add_edge("a", "ask")
    g.add_edge("ask", "b")
    graph = g.compile(checkpointer=ns.InMemorySaver(), interrupt_before=["b"])
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    restarted = stream(graph, {"log": ["new"]}, cfg, stream_mode=["updates", "values"])
    graph.invoke(ns.Command(resume="yes"), cfg)
    at_breakpoint = snapshot(graph, cfg)
    again = stream(graph, {"log": ["newer"]}, cfg, stream_mode=["updates", "values"])
    return {
        "restarted": restarted,
        "at_breakpoint": at_breakpoint,
        "again": again,
        "history": history(graph, cfg),
    }


@differential
def test_command_update_on_a_finished_thread(ns):
    g = ns.StateGraph(Log)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_edge(ns.START, "a")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    chunks = stream(graph, ns.Command(update={"log": ["late"]}), cfg, stream_mode=["values", "updates"])
    # LangGraph re-saves the update as a new checkpoint with the same step
    # number; lgdist gives it the next step (DIFFERENCES.md): history not compared.
    return {"chunks": chunks, "state": snapshot(graph, cfg)["values"], "invoke": graph.invoke(None, cfg)}


@differential
def test_replay_an_interrupted_checkpoint_and_past_a_breakpoint(ns):
    class S(TypedDict):
        log: Annotated[list, operator.add]

    def ask(state: S):
        return {"log": ["ask=" + ns.interrupt("q")]}

    g = ns.StateGraph(S)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("ask", ask)
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_edge(ns.START, "a")
    g.add_edge("a", "ask")
    g.add_edge("ask", "b")
    graph = g.compile(checkpointer=ns.InMemorySaver(), interrupt_before=["b"])
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    graph.invoke(ns.Command(resume="first"), cfg)
    graph.invoke(None, cfg)
    asked = [s for s in graph.get_state_history(cfg) if s.next == ("ask",)][0]
    before_b = [s for s in graph.get_state_history(cfg) if s.next == ("b",)][0]
    # Replaying the interrupted checkpoint asks again...
    replay_ask = stream(graph, None, asked.config, stream_mode=["updates", "values"])
    # ...and replaying the breakpoint's checkpoint goes past it.
    replay_b = stream(graph, None, before_b.config, stream_mode=["updates", "values", "debug"])
    return {
        "replay_ask": replay_ask,
        "replay_b": replay_b,
        "latest": snapshot(graph, cfg),
        "history": history(graph, cfg),
    }


@differential
def test_resume_a_finished_thread_in_debug_mode(ns):
    g = ns.StateGraph(Log)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_edge(ns.START, "a")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    return {
        "debug_values": stream(graph, None, cfg, stream_mode=["debug", "values"]),
        "history": history(graph, cfg),
    }


@differential
def test_goto_from_a_command_node_into_a_loop_and_out(ns):
    class S(TypedDict):
        n: int
        log: Annotated[list, operator.add]

    def step(state: S):
        if state["n"] >= 3:
            return ns.Command(goto="done", update={"log": ["exit"]})
        return ns.Command(goto="step", update={"n": state["n"] + 1, "log": [state["n"]]})

    g = ns.StateGraph(S)
    g.add_node("step", step)
    g.add_node("done", lambda s: {"log": ["done"]})
    g.add_edge(ns.START, "step")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    return {
        "updates": stream(graph, {"n": 0, "log": []}, cfg, stream_mode="updates"),
        "history": history(graph, cfg),
    }


@differential
def test_messages_state_with_ai_message_ids_and_update_state(ns):
    def bot(state):
        return {"messages": [AIMessage(content="first answer", id="ai-1")]}

    g = ns.StateGraph(ns.MessagesState)
    g.add_node("bot", bot)
    g.add_edge(ns.START, "bot")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    graph.invoke({"messages": [HumanMessage(content="hi", id="h-1")]}, cfg)
    # Editing a message in place: same id replaces it.
    graph.update_state(cfg, {"messages": [AIMessage(content="edited answer", id="ai-1")]})
    return {"state": snapshot(graph, cfg), "history": history(graph, cfg)}


@differential
async def test_async_parallel_interrupts_and_cached_writes(ns):
    calls = []

    class S(TypedDict):
        answers: Annotated[list, operator.add]

    async def left(state: S):
        calls.append("left")
        return {"answers": ["left=" + ns.interrupt("left?")]}

    async def right(state: S):
        calls.append("right")
        return {"answers": ["right"]}

    g = ns.StateGraph(S)
    g.add_node("left", left)
    g.add_node("right", right)
    g.add_edge(ns.START, "left")
    g.add_edge(ns.START, "right")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    first = [c async for c in graph.astream({"answers": []}, cfg, stream_mode=["updates", "values"])]
    live = snapshot(graph, cfg)
    second = [c async for c in graph.astream(ns.Command(resume="L"), cfg, stream_mode=["updates", "values"])]
    return {
        # right's update and left's interrupt come in either order; the values
        # with right's write applied come last.
        "first": [first[0], Unordered(first[1:4]), *first[4:]],
        "live": live,
        "second": second,
        "calls": sorted(calls),
    }
