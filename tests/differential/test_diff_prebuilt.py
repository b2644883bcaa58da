"""ToolNode with tools that return ``Command``: the node's list of updates
(Commands and plain message updates) is applied by the graph, its ``goto``
routes, ``InjectedState`` / ``InjectedToolCallId`` reach the tool."""

from typing import Annotated

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from typing_extensions import TypedDict

from lgdist.prebuilt import InjectedState as LgdistInjectedState

from .harness import capture, differential, thread
from .observe import snapshot, stream


def _injected_state(ns):
    if ns.name == "langgraph":
        from langgraph.prebuilt import InjectedState

        return InjectedState
    return LgdistInjectedState


def _add_messages_state(ns):
    class AgentState(TypedDict):
        messages: Annotated[list, ns.add_messages]
        user: str
        visits: int

    return AgentState


def build_tools(ns):
    InjectedState = _injected_state(ns)

    @tool
    def remember_user(name: str, tool_call_id: Annotated[str, InjectedToolCallId]):
        """Remember the user's name."""
        return ns.Command(
            update={
                "user": name,
                "messages": [ToolMessage(f"remembered {name}", tool_call_id=tool_call_id)],
            }
        )

    @tool
    def count_visit(state: Annotated[dict, InjectedState], tool_call_id: Annotated[str, InjectedToolCallId]):
        """Count a visit, reading the state."""
        visits = (state.get("visits") or 0) + 1
        return ns.Command(
            update={"visits": visits, "messages": [ToolMessage(f"visit {visits}", tool_call_id=tool_call_id)]},
        )

    @tool
    def hand_off(tool_call_id: Annotated[str, InjectedToolCallId]):
        """Hand off to the closing node."""
        return ns.Command(
            update={"messages": [ToolMessage("handing off", tool_call_id=tool_call_id)]},
            goto="closing",
        )

    @tool
    def shout(text: str) -> str:
        """An ordinary tool."""
        return text.upper()

    return [remember_user, count_visit, hand_off, shout]


def _calls(*names_args):
    return AIMessage(
        "",
        id="ai-1",
        tool_calls=[
            {"name": name, "args": args, "id": f"call-{i}", "type": "tool_call"}
            for i, (name, args) in enumerate(names_args)
        ],
    )


def build_tool_command_graph(ns, calls, checkpointer=None):
    g = ns.StateGraph(_add_messages_state(ns))
    g.add_node("agent", lambda s: {"messages": [calls]})
    g.add_node("tools", ns.ToolNode(build_tools(ns)))
    g.add_node("closing", lambda s: {"messages": [AIMessage("closed", id="ai-closing")]})
    g.add_edge(ns.START, "agent")
    g.add_edge("agent", "tools")
    g.add_edge("closing", ns.END)
    return g.compile(checkpointer=checkpointer)


@differential
def test_tool_node_tools_returning_commands(ns):
    calls = _calls(("remember_user", {"name": "ada"}), ("shout", {"text": "hi"}), ("count_visit", {}))
    graph = build_tool_command_graph(ns, calls, ns.InMemorySaver())
    cfg = thread()
    inp = {"messages": [HumanMessage("hello", id="h-1")], "visits": 2}
    return {
        "invoke": graph.invoke(inp, cfg),
        "state": snapshot(graph, cfg),
        "updates": stream(graph, inp, thread(), stream_mode="updates"),
        "tasks_values_debug": stream(graph, inp, thread(), stream_mode=["tasks", "values", "debug"]),
    }


@differential
def test_tool_node_command_with_goto(ns):
    calls = _calls(("hand_off", {}), ("shout", {"text": "bye"}))
    graph = build_tool_command_graph(ns, calls)
    inp = {"messages": [HumanMessage("hello", id="h-1")]}
    return {
        "invoke": graph.invoke(inp),
        "updates": stream(graph, inp, stream_mode="updates"),
    }


@differential
async def test_tool_node_commands_async(ns):
    calls = _calls(("remember_user", {"name": "grace"}), ("count_visit", {}))
    graph = build_tool_command_graph(ns, calls)
    inp = {"messages": [HumanMessage("hello", id="h-1")], "visits": 0}
    return {
        "ainvoke": await graph.ainvoke(inp),
        "astream": [c async for c in graph.astream(inp, stream_mode="updates")],
    }


@differential
def test_node_returning_a_list_of_commands_and_updates(ns):
    class S(TypedDict):
        a: str
        b: str

    def node(state: S):
        return [ns.Command(update={"a": "from command"}), {"b": "from dict"}]

    def bad(state: S):
        return [{"a": "x"}, {"b": "y"}]

    g = ns.StateGraph(S)
    g.add_node("node", node)
    g.add_edge(ns.START, "node")
    h = ns.StateGraph(S)
    h.add_node("bad", bad)
    h.add_edge(ns.START, "bad")
    return {
        "mixed": stream(g.compile(), {"a": "", "b": ""}, stream_mode="updates"),
        "dicts_only": capture(lambda: h.compile().invoke({"a": "", "b": ""})),
    }


@differential
def test_snapshot_of_a_tool_node_task_beside_an_interrupt(ns):
    """The tools task finished (several writes to `messages`) while a
    parallel task waits at an interrupt: the snapshot shows its result."""
    calls = _calls(("remember_user", {"name": "ada"}), ("shout", {"text": "hi"}))
    g = ns.StateGraph(_add_messages_state(ns))
    g.add_node("agent", lambda s: {"messages": [calls]})
    g.add_node("tools", ns.ToolNode(build_tools(ns)))
    g.add_node("ask", lambda s: {"visits": len(ns.interrupt("who?"))})
    g.add_edge(ns.START, "agent")
    g.add_edge("agent", "tools")
    g.add_edge("agent", "ask")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    graph.invoke({"messages": [HumanMessage("hello", id="h-1")]}, cfg)
    resumed = graph.invoke(ns.Command(resume="bob"), cfg)
    # Message ids of the saved writes are not compared after the resume
    # (see DIFFERENCES.md, "Ids of messages in saved writes").
    return {
        "state": snapshot(graph, cfg),
        "resumed": {**resumed, "messages": [(m.type, m.content) for m in resumed["messages"]]},
    }
