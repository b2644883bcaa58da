"""Stream modes: custom, debug, checkpoints, tasks, several at once,
messages (tokens of a chat model inside a node)."""

import operator
from typing import Annotated

import pytest
from langchain_core.messages import HumanMessage
from typing_extensions import TypedDict

from lgdist.testing import ScriptedChatModel, fake_search

from .harness import differential, thread
from .observe import stream


class Steps(TypedDict):
    topic: str
    log: Annotated[list, operator.add]


def writer_graph(ns, checkpointer=None):
    def plan(state: Steps):
        write = ns.get_stream_writer()
        write({"progress": "planning", "topic": state["topic"]})
        write("plain text chunk")
        return {"log": ["plan"]}

    def act(state: Steps, writer):
        # The `writer` parameter is the same writer.
        writer({"progress": "acting"})
        return {"log": ["act"]}

    g = ns.StateGraph(Steps)
    g.add_node("plan", plan)
    g.add_node("act", act)
    g.add_edge(ns.START, "plan")
    g.add_edge("plan", "act")
    return g.compile(checkpointer=checkpointer)


@differential
def test_custom_stream_mode(ns):
    graph = writer_graph(ns)
    return {
        "custom": stream(graph, {"topic": "t"}, stream_mode="custom"),
        "custom_and_updates": stream(graph, {"topic": "t"}, stream_mode=["custom", "updates"]),
        # Outside a stream that asks for it, writing is a no-op.
        "invoke": graph.invoke({"topic": "t"}),
    }


@differential
def test_debug_stream_mode(ns):
    graph = writer_graph(ns, ns.InMemorySaver())
    return {
        "debug": stream(graph, {"topic": "t"}, thread(), stream_mode="debug"),
        "without_checkpointer": stream(writer_graph(ns), {"topic": "t"}, stream_mode="debug"),
    }


@differential
def test_checkpoints_stream_mode(ns):
    graph = writer_graph(ns, ns.InMemorySaver())
    return {"checkpoints": stream(graph, {"topic": "t"}, thread(), stream_mode="checkpoints")}


@differential
def test_tasks_stream_mode(ns):
    graph = writer_graph(ns, ns.InMemorySaver())
    return {"tasks": stream(graph, {"topic": "t"}, thread(), stream_mode="tasks")}


@differential
def test_several_stream_modes_at_once(ns):
    graph = writer_graph(ns, ns.InMemorySaver())
    return {
        "all": stream(
            graph, {"topic": "t"}, thread(), stream_mode=["values", "updates", "custom", "tasks", "checkpoints"]
        ),
        "debug_flag": stream(graph, {"topic": "t"}, thread(), stream_mode="updates", debug=False),
    }


@differential
def test_debug_stream_through_an_interrupt_and_resume(ns):
    class S(TypedDict):
        answer: str

    def ask(state: S):
        return {"answer": ns.interrupt("what?")}

    g = ns.StateGraph(S)
    g.add_node("ask", ask)
    g.add_node("done", lambda s: {"answer": s["answer"] + "!"})
    g.add_edge(ns.START, "ask")
    g.add_edge("ask", "done")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    return {
        "first": stream(graph, {"answer": ""}, cfg, stream_mode=["debug", "updates"]),
        "resume": stream(graph, ns.Command(resume="this"), cfg, stream_mode=["debug", "updates"]),
    }


@differential
def test_debug_stream_with_breakpoint(ns):
    g = ns.StateGraph(Steps)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_edge(ns.START, "a")
    g.add_edge("a", "b")
    graph = g.compile(checkpointer=ns.InMemorySaver(), interrupt_before=["b"])
    cfg = thread()
    return {
        "first": stream(graph, {"topic": "x"}, cfg, stream_mode="debug"),
        "second": stream(graph, None, cfg, stream_mode="debug"),
    }


def token_stream(chunks):
    """The parts of a "messages" stream that must match: message type and
    content, and the node that produced it."""
    return [
        (type(message).__name__, message.content, meta["langgraph_node"], meta["langgraph_step"])
        for message, meta in chunks
    ]


@differential
def test_messages_stream_mode_with_a_chat_model(ns):
    model = ScriptedChatModel(responses=["Hello there, friend", "Second answer here"])

    def chat(state):
        return {"messages": [model.invoke(state["messages"])]}

    def again(state):
        return {"messages": [model.invoke(state["messages"])]}

    g = ns.StateGraph(ns.MessagesState)
    g.add_node("chat", chat)
    g.add_node("again", again)
    g.add_edge(ns.START, "chat")
    g.add_edge("chat", "again")
    graph = g.compile()
    chunks = stream(graph, {"messages": [HumanMessage(content="hi", id="h1")]}, stream_mode="messages")
    return {"tokens": token_stream(chunks), "ids": [m.id for m, _ in chunks]}


@differential
def test_messages_stream_mode_with_another_mode(ns):
    model = ScriptedChatModel(responses=["one two"])

    def chat(state):
        return {"messages": [model.invoke(state["messages"])]}

    g = ns.StateGraph(ns.MessagesState)
    g.add_node("chat", chat)
    g.add_edge(ns.START, "chat")
    graph = g.compile()
    chunks = stream(graph, {"messages": [("user", "hi")]}, stream_mode=["messages", "updates"])
    return {
        "modes": [mode for mode, _ in chunks],
        "tokens": token_stream([c for mode, c in chunks if mode == "messages"]),
        "updates": [c for mode, c in chunks if mode == "updates"],
    }


@pytest.mark.filterwarnings("ignore:MessageGraph is deprecated")
@differential
def test_messages_stream_mode_with_a_model_node_and_a_tool_node(ns):
    """The seed's shape: the chat model itself is a node, then a ToolNode;
    tool results stream as whole messages, model replies as tokens."""
    model = ScriptedChatModel().bind_tools([fake_search])
    g = ns.MessageGraph()
    g.add_node("agent", model)
    g.add_node("action", ns.ToolNode([fake_search]))
    g.set_entry_point("agent")
    g.add_conditional_edges("agent", lambda messages: "action" if messages[-1].tool_calls else ns.END)
    g.add_edge("action", "agent")
    graph = g.compile()
    chunks = stream(graph, [HumanMessage(content="weather in sf", id="q1")], stream_mode="messages")
    return {
        "tokens": token_stream(chunks),
        "tool_call_chunks": [len(getattr(m, "tool_call_chunks", None) or []) for m, _ in chunks],
        "metadata_keys": [sorted(k for k in meta if k.startswith("langgraph_")) for _, meta in chunks],
    }
