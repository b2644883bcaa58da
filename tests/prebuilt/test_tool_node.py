"""``ToolNode`` and ``tools_condition`` behave like LangGraph's prebuilt ones.

Each case runs the same tools and input through ``langgraph.prebuilt.ToolNode``
(the test-only oracle) and ``lgdist.prebuilt.ToolNode`` and compares the
outputs — or the errors — after normalising both to plain data."""

import asyncio
import contextvars
import dataclasses
import threading
from typing import Annotated, Any, Callable, Union

import pydantic
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import InjectedToolCallId, tool
from langgraph import prebuilt as lg_prebuilt
from langgraph import types as lg_types
from langgraph._internal._constants import CONFIG_KEY_RUNTIME
from langgraph.runtime import Runtime

from lgdist import types as lgdist_types
from lgdist.constants import END
from lgdist.errors import GraphInterrupt
from lgdist.prebuilt import InjectedState, ToolInvocationError, ToolNode, tools_condition
from lgdist.prebuilt.tool_node import ToolNode as ToolNodeFromModule

# LangGraph 1.x's ToolNode only runs inside a graph; outside one it needs its
# runtime in the config.
LG_CONFIG = {"configurable": {CONFIG_KEY_RUNTIME: Runtime()}}


def make_tools(command_cls: Any, injected_state: Any) -> list[Any]:
    """The same tools, built against LangGraph's or lgdist's ``Command`` and
    ``InjectedState``."""

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @tool
    def boom(x: str) -> str:
        """Always fails."""
        raise ValueError("bad " + x)

    @tool
    def as_json(x: str) -> dict:
        """Returns a dict."""
        return {"a": x, "b": [1, 2], "none": None}

    @tool
    def as_blocks(x: str) -> list:
        """Returns content blocks."""
        return [{"type": "text", "text": x}]

    @tool
    def nothing(x: str) -> None:
        """Returns None."""
        return None

    @tool(response_format="content_and_artifact")
    def with_artifact(x: str) -> tuple[str, dict]:
        """Returns content and artifact."""
        return x, {"raw": x}

    @tool
    def own_message(x: str, call_id: Annotated[str, InjectedToolCallId]) -> ToolMessage:
        """Returns its own ToolMessage."""
        return ToolMessage("direct " + x, tool_call_id=call_id, name="custom")

    @tool
    def goto_cmd(x: str, call_id: Annotated[str, InjectedToolCallId]) -> Any:
        """Command with a matching ToolMessage."""
        return command_cls(
            goto="elsewhere",
            update={"messages": [ToolMessage("done " + x, tool_call_id=call_id, name="other")],
                    "foo": x},
        )

    @tool
    def list_cmd(x: str, call_id: Annotated[str, InjectedToolCallId]) -> Any:
        """Command with a list update."""
        return command_cls(update=[AIMessage("pre"), ToolMessage("listed", tool_call_id=call_id)])

    @tool
    def no_message_cmd(x: str) -> Any:
        """Command without a ToolMessage."""
        return command_cls(update={"foo": x})

    @tool
    def wrong_id_cmd(x: str) -> Any:
        """Command answering another call."""
        return command_cls(update={"messages": [ToolMessage("w", tool_call_id="other")]})

    @tool
    def parent_cmd(x: str) -> Any:
        """Command for the parent graph."""
        return command_cls(graph=command_cls.PARENT, update={"foo": 1})

    @tool
    def goto_only_cmd(x: str) -> Any:
        """Command without update."""
        return command_cls(goto="a")

    @tool
    def whole_state(x: str, state: Annotated[Any, injected_state]) -> str:
        """Sees the state."""
        if isinstance(state, dict):
            return f"{x}: keys={sorted(state)}"
        return f"{x}: {type(state).__name__}"

    @tool
    def messages_field(x: str, messages: Annotated[list, injected_state("messages")]) -> str:
        """Sees the messages."""
        return f"{x}: {len(messages)} messages"

    @tool
    def other_field(x: str, other: Annotated[int, injected_state("other")]) -> str:
        """Sees the 'other' field."""
        return f"{x}: other={other}"

    def plain_function(a: int) -> str:
        """A plain function."""
        return f"plain {a}"

    return [add, boom, as_json, as_blocks, nothing, with_artifact, own_message, goto_cmd,
            list_cmd, no_message_cmd, wrong_id_cmd, parent_cmd, goto_only_cmd, whole_state,
            messages_field, other_field, plain_function]


LG_TOOLS = make_tools(lg_types.Command, lg_prebuilt.InjectedState)
OUR_TOOLS = make_tools(lgdist_types.Command, InjectedState)


def normalize(value: Any) -> Any:
    """Plain data for comparing LangGraph's and lgdist's outputs."""
    if isinstance(value, BaseMessage):
        return {"__class__": type(value).__name__, **value.model_dump()}
    if type(value).__name__ == "Command":
        return ("Command", value.graph, normalize(value.update), value.goto, value.resume)
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    return value


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", normalize(call()))
    except Exception as exc:  # the error is part of the behaviour being compared
        return ("error", type(exc).__name__, str(exc))


def assert_same(input_: Any, **node_kwargs: Any) -> Any:
    """Sync and async lgdist output equal LangGraph's; returns LangGraph's."""
    lg_node = lg_prebuilt.ToolNode(LG_TOOLS, **node_kwargs)
    our_node = ToolNode(OUR_TOOLS, **node_kwargs)
    expected = outcome(lambda: lg_node.invoke(input_, LG_CONFIG))
    assert outcome(lambda: our_node.invoke(input_)) == expected
    assert outcome(lambda: asyncio.run(our_node.ainvoke(input_))) == expected
    return expected


def ai(*calls: tuple[str, dict]) -> AIMessage:
    return AIMessage(
        "", tool_calls=[{"name": n, "args": a, "id": f"call_{i}"} for i, (n, a) in enumerate(calls)]
    )


@dataclasses.dataclass
class DataclassState:
    messages: list
    other: int = 5


class PydanticState(pydantic.BaseModel):
    messages: list
    other: int = 7


MIXED = ai(("add", {"a": 1, "b": 2}), ("as_json", {"x": "j"}), ("as_blocks", {"x": "l"}),
           ("nothing", {"x": "n"}), ("with_artifact", {"x": "a"}), ("own_message", {"x": "o"}),
           ("plain_function", {"a": 3}), ("nope", {}), ("add", {"a": "x"}))

CASES: dict[str, tuple[Any, dict]] = {
    "message_list_in_list_out": ([HumanMessage("hi"), MIXED], {}),
    "dict_in_dict_out": ({"messages": [HumanMessage("hi"), MIXED]}, {}),
    "dataclass_state": (DataclassState([MIXED]), {}),
    "pydantic_state": (PydanticState(messages=[MIXED]), {}),
    "custom_messages_key": ({"history": [MIXED]}, {"messages_key": "history"}),
    "last_ai_message_found_behind_others": (
        {"messages": [ai(("add", {"a": 1, "b": 1})), ToolMessage("x", tool_call_id="call_0"),
                      HumanMessage("y")]}, {}),
    "no_tool_calls": ({"messages": [AIMessage("plain")]}, {}),
    "no_tool_calls_list": ([AIMessage("plain")], {}),
    "default_handler_raises_tool_errors": ([ai(("boom", {"x": "q"}))], {}),
    "handle_all_errors": ([ai(("boom", {"x": "q"}), ("add", {"a": 1}))], {"handle_tool_errors": True}),
    "no_error_handling_raises_invocation_error": (
        [ai(("add", {"a": 1}))], {"handle_tool_errors": False}),
    "unknown_tool_even_without_handling": ([ai(("nope", {}))], {"handle_tool_errors": False}),
    "error_text": ([ai(("boom", {"x": "q"}))], {"handle_tool_errors": "try again"}),
    "error_types_caught": ([ai(("boom", {"x": "q"}))], {"handle_tool_errors": (TypeError, ValueError)}),
    "error_types_not_caught": ([ai(("boom", {"x": "q"}))], {"handle_tool_errors": KeyError}),
    "empty_message_list_in_dict": ({"messages": []}, {}),
    "missing_messages_key": ({"foo": []}, {}),
    "no_ai_message": ({"messages": [HumanMessage("x")]}, {}),
    "commands_dict_input": (
        {"messages": [ai(("goto_cmd", {"x": "q"}), ("add", {"a": 1, "b": 1}),
                         ("goto_only_cmd", {"x": "g"}), ("parent_cmd", {"x": "p"}))]}, {}),
    "commands_list_input": (
        [ai(("list_cmd", {"x": "q"}), ("add", {"a": 1, "b": 1}), ("goto_only_cmd", {"x": "g"}))], {}),
    "command_dict_update_with_list_input_raises": ([ai(("goto_cmd", {"x": "q"}))], {}),
    "command_list_update_with_dict_input_raises": ({"messages": [ai(("list_cmd", {"x": "q"}))]}, {}),
    "command_without_tool_message_raises": ({"messages": [ai(("no_message_cmd", {"x": "q"}))]}, {}),
    "command_with_wrong_tool_call_id_raises": ({"messages": [ai(("wrong_id_cmd", {"x": "q"}))]}, {}),
    "parent_command_with_dict_update_and_list_input_raises": ([ai(("parent_cmd", {"x": "q"}))], {}),
    "command_errors_handled_when_asked": (
        [ai(("goto_cmd", {"x": "q"}), ("add", {"a": 1, "b": 2}))], {"handle_tool_errors": True}),
    "injected_state_from_dict": (
        {"messages": [HumanMessage("a"), ai(("whole_state", {"x": "s"}), ("messages_field", {"x": "m"}),
                                            ("other_field", {"x": "o"}))], "other": 3}, {}),
    "injected_state_from_dataclass": (
        DataclassState([ai(("whole_state", {"x": "s"}), ("messages_field", {"x": "m"}),
                           ("other_field", {"x": "o"}))]), {}),
    "injected_state_from_message_list": (
        [HumanMessage("a"), ai(("whole_state", {"x": "s"}), ("messages_field", {"x": "m"}))], {}),
    "injected_field_missing_from_message_list": ([ai(("other_field", {"x": "o"}))], {}),
    "injected_state_not_taken_from_model_args": (
        [ai(("whole_state", {"x": "s", "state": {"fake": 1}}))], {}),
    "validation_errors_hide_injected_args": ([ai(("whole_state", {"state": "q"}))], {}),
    "tool_call_with_context": (
        {"__type": "tool_call_with_context",
         "tool_call": {"name": "whole_state", "args": {"x": "q"}, "id": "9", "type": "tool_call"},
         "state": {"messages": [HumanMessage("a")], "other": 1}}, {}),
}


@pytest.mark.parametrize("input_,kwargs", list(CASES.values()), ids=list(CASES))
def test_tool_node_matches_langgraph(input_: Any, kwargs: dict) -> None:
    assert_same(input_, **kwargs)


def typed_handler(e: Union[TypeError, ValueError]) -> str:
    return f"typed: {e}"


def key_error_handler(e: KeyError) -> str:
    return "never"


def untyped_handler(e):  # type: ignore[no-untyped-def]
    return {"not": "a string"}


def wrongly_typed_handler(e: str) -> str:
    return "never"


@pytest.mark.parametrize(
    "handler",
    [typed_handler, key_error_handler, untyped_handler, wrongly_typed_handler, lambda e: f"cb {e}"],
    ids=["union_annotation", "other_annotation", "no_annotation", "non_exception_annotation", "lambda"],
)
def test_callable_error_handler_matches_langgraph(handler: Callable[..., Any]) -> None:
    assert_same([ai(("boom", {"x": "q"}), ("add", {"a": 2, "b": 2}))], handle_tool_errors=handler)


def test_default_error_text_matches_langgraph() -> None:
    result = assert_same([ai(("boom", {"x": "q"}))], handle_tool_errors=True)
    assert result[1][0]["content"] == "Error: ValueError('bad q')\n Please fix your mistakes."
    assert result[1][0]["status"] == "error"


def test_unknown_tool_lists_valid_tools() -> None:
    node = ToolNode(OUR_TOOLS[:2])
    [message] = node.invoke([ai(("nope", {}))])
    assert message.content == "Error: nope is not a valid tool, try one of [add, boom]."
    assert message.status == "error"


def test_invalid_arguments_raise_tool_invocation_error_without_handling() -> None:
    with pytest.raises(ToolInvocationError) as info:
        ToolNode(OUR_TOOLS, handle_tool_errors=False).invoke([ai(("add", {"a": "x"}))])
    assert info.value.tool_name == "add" and info.value.tool_kwargs == {"a": "x"}


def test_single_tool_call_input_as_sent_with_send() -> None:
    """A bare tool call (LangGraph 0.2's Send(tool_call)) gives a dict output;
    LangGraph 1.x only accepts the tool_call_with_context form."""
    call = {"name": "add", "args": {"a": 1, "b": 2}, "id": "s1", "type": "tool_call"}
    assert normalize(ToolNode(OUR_TOOLS).invoke(call)) == normalize(
        {"messages": [ToolMessage("3", name="add", tool_call_id="s1")]}
    )


def test_tool_calls_run_in_parallel_and_keep_their_order() -> None:
    barrier = threading.Barrier(3, timeout=5)

    @tool
    def wait(n: int) -> int:
        """Waits for the other calls: deadlocks unless the calls run at once."""
        barrier.wait()
        return n

    out = ToolNode([wait]).invoke([ai(("wait", {"n": 1}), ("wait", {"n": 2}), ("wait", {"n": 3}))])
    assert [m.content for m in out] == ["1", "2", "3"]


def test_async_tool_calls_run_concurrently_and_keep_their_order() -> None:
    @tool
    async def slow(n: int) -> int:
        """Finishes in reverse order."""
        await asyncio.sleep(0.05 * (3 - n))
        return n

    async def run() -> Any:
        return await ToolNode([slow]).ainvoke({"messages": [ai(*[("slow", {"n": n}) for n in range(3)])]})

    assert [m.content for m in asyncio.run(run())["messages"]] == ["0", "1", "2"]


def test_tools_see_the_callers_context_variables() -> None:
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")

    @tool
    def read_marker() -> str:
        """Returns the context variable."""
        return marker.get()

    marker.set("from-caller")
    out = ToolNode([read_marker]).invoke([ai(("read_marker", {}), ("read_marker", {}))])
    assert [m.content for m in out] == ["from-caller", "from-caller"]


def test_interrupts_are_not_turned_into_tool_errors() -> None:
    @tool
    def ask() -> str:
        """Interrupts."""
        raise GraphInterrupt(())

    with pytest.raises(GraphInterrupt):
        ToolNode([ask], handle_tool_errors=True).invoke([ai(("ask", {}))])
    with pytest.raises(GraphInterrupt):
        asyncio.run(ToolNode([ask], handle_tool_errors=True).ainvoke([ai(("ask", {}))]))


def test_command_returned_by_a_tool_is_not_mutated() -> None:
    kept: list[Any] = []

    @tool
    def remember(call_id: Annotated[str, InjectedToolCallId]) -> Any:
        """Returns a command it keeps."""
        command = lgdist_types.Command(update={"messages": [ToolMessage("x", tool_call_id=call_id)]})
        kept.append(command)
        return command

    [returned] = ToolNode([remember]).invoke({"messages": [ai(("remember", {}))]})
    assert returned.update["messages"][0].name == "remember"
    assert kept[0].update["messages"][0].name is None


def test_tool_node_is_a_runnable_graph_node() -> None:
    node = ToolNode(OUR_TOOLS, name="action", tags=["t"])
    assert isinstance(node, Runnable)
    assert node.get_name() == "action" and node.tags == ["t"]
    assert ToolNodeFromModule is ToolNode
    assert set(node.tools_by_name) == set(lg_prebuilt.ToolNode(LG_TOOLS).tools_by_name)
    batch = node.batch([[ai(("add", {"a": 1, "b": 1}))], [ai(("add", {"a": 2, "b": 2}))]])
    assert [[m.content for m in out] for out in batch] == [["2"], ["4"]]


def test_tool_node_runs_inside_a_langgraph_graph() -> None:
    """Drop-in check: lgdist's ToolNode works where LangGraph's does."""
    from langgraph.graph import MessagesState, StateGraph

    def agent(state: dict) -> dict:
        if isinstance(state["messages"][-1], HumanMessage):
            return {"messages": [ai(("add", {"a": 2, "b": 3}), ("whole_state", {"x": "s"}))]}
        return {"messages": [AIMessage("done")]}

    results = []
    for node in (lg_prebuilt.ToolNode(LG_TOOLS), ToolNode(OUR_TOOLS)):
        builder = StateGraph(MessagesState)
        builder.add_node("agent", agent)
        builder.add_node("tools", node)
        builder.set_entry_point("agent")
        builder.add_conditional_edges("agent", lg_prebuilt.tools_condition)
        builder.add_edge("tools", "agent")
        out = builder.compile().invoke({"messages": [HumanMessage("go")]})
        results.append([(m.type, m.content) for m in out["messages"]])
    assert results[0] == results[1]
    assert results[1][2] == ("tool", "5")


@pytest.mark.parametrize(
    "state",
    [
        [ai(("add", {}))],
        [AIMessage("x")],
        {"messages": [HumanMessage("x")]},
        {"messages": [ai(("add", {}))]},
        DataclassState([ai(("add", {}))]),
        DataclassState([AIMessage("x")]),
        {"messages": []},
        {},
    ],
    ids=["list_calls", "list_no_calls", "dict_human", "dict_calls", "object_calls",
         "object_no_calls", "empty_messages", "no_messages"],
)
def test_tools_condition_matches_langgraph(state: Any) -> None:
    assert outcome(lambda: tools_condition(state)) == outcome(lambda: lg_prebuilt.tools_condition(state))


def test_tools_condition_routes_to_end_constant() -> None:
    assert tools_condition([AIMessage("x")]) == END == "__end__"
    assert tools_condition({"history": [ai(("add", {}))]}, messages_key="history") == "tools"
