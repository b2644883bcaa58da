"""``ScriptedChatModel`` and the fake search tools: deterministic, offline,
and usable wherever LangGraph's README uses a hosted model."""

import asyncio
import warnings
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableBinding

from lgdist.prebuilt import ToolNode
from lgdist.testing import (
    ScriptedChatModel,
    ScriptExhaustedError,
    TavilySearchResults,
    build_seed_model,
    fake_search,
)

QUESTION = "what is the weather in sf currently"


def test_fake_search_answers_like_the_readme() -> None:
    assert fake_search.name == "search"
    assert fake_search.description == "Call to surf the web."
    assert fake_search.invoke({"query": "weather in SF"}) == "It's 60 degrees and foggy."
    assert fake_search.invoke({"query": "San Francisco"}) == "It's 60 degrees and foggy."
    assert fake_search.invoke({"query": "weather in Paris"}) == "It's 90 degrees and sunny."


def test_tavily_lookalike_has_tavilys_name_and_result_shape() -> None:
    tavily = TavilySearchResults(max_results=1)
    assert tavily.name == "tavily_search_results_json"
    assert tavily.invoke({"query": QUESTION}) == [
        {"url": "https://weather.example/search", "content": "It's 60 degrees and foggy."}
    ]


def test_bind_tools_returns_a_binding_recording_the_tools() -> None:
    bound = ScriptedChatModel().bind_tools([fake_search, TavilySearchResults()])
    assert isinstance(bound, RunnableBinding)
    names = [t["function"]["name"] for t in bound.kwargs["tools"]]
    assert names == ["search", "tavily_search_results_json"]


def test_question_becomes_a_call_to_the_first_bound_tool() -> None:
    reply = build_seed_model().bind_tools([fake_search]).invoke([HumanMessage(QUESTION)])
    assert reply.content == ""
    [call] = reply.tool_calls
    assert call["name"] == "search" and call["args"] == {"query": QUESTION}
    assert call["id"].startswith("call_") and reply.id.startswith("run-scripted-")


def test_tool_result_becomes_the_final_answer() -> None:
    model = build_seed_model().bind_tools([TavilySearchResults(max_results=1)])
    conversation: list[Any] = [HumanMessage(QUESTION)]
    conversation.append(model.invoke(conversation))
    conversation += ToolNode([TavilySearchResults(max_results=1)]).invoke(conversation)
    answer = model.invoke(conversation)
    assert answer.content == "Based on the search: It's 60 degrees and foggy."
    assert not answer.tool_calls


def test_without_tools_it_answers_directly() -> None:
    assert ScriptedChatModel().invoke("hello").content == "You said: hello"


def test_ids_depend_on_the_conversation_not_on_message_ids() -> None:
    model = build_seed_model().bind_tools([fake_search])
    first = model.invoke([HumanMessage(QUESTION, id="a")])
    again = build_seed_model().bind_tools([fake_search]).invoke([HumanMessage(QUESTION, id="b")])
    other = model.invoke([HumanMessage("weather in Paris")])
    assert first == again
    assert other.id != first.id and other.tool_calls[0]["id"] != first.tool_calls[0]["id"]


def test_stream_yields_words_that_add_up_to_the_invoke_result() -> None:
    model = build_seed_model().bind_tools([fake_search])
    conversation = [HumanMessage(QUESTION), model.invoke([HumanMessage(QUESTION)]),
                    ToolMessage("It's 60 degrees and foggy.", tool_call_id="call_x")]
    chunks = list(model.stream(conversation))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert [c.content for c in chunks][:3] == ["Based ", "on ", "the "]
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.content == model.invoke(conversation).content
    assert total.id == model.invoke(conversation).id


def test_streamed_tool_call_matches_the_invoked_one() -> None:
    model = build_seed_model().bind_tools([fake_search])
    chunks = list(model.stream([HumanMessage(QUESTION)]))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.tool_calls == model.invoke([HumanMessage(QUESTION)]).tool_calls


def test_async_invoke_and_stream() -> None:
    model = build_seed_model().bind_tools([fake_search])

    async def run() -> tuple[Any, list[Any]]:
        reply = await model.ainvoke([HumanMessage(QUESTION)])
        chunks = [c async for c in ScriptedChatModel().astream("hello there")]
        return reply, chunks

    reply, chunks = asyncio.run(run())
    assert reply.tool_calls[0]["name"] == "search"
    assert "".join(c.content for c in chunks) == "You said: hello there"


def test_script_is_returned_in_order() -> None:
    scripted = AIMessage("", tool_calls=[{"name": "search", "args": {"query": "x"}, "id": "c1"}])
    model = ScriptedChatModel(responses=[scripted, "final words"])
    first, second = model.invoke("q"), model.invoke("q")
    assert first.tool_calls == scripted.tool_calls
    assert second.content == "final words" and isinstance(second, AIMessage)
    assert first.id.startswith("run-scripted-") and first.id != second.id
    assert scripted.id is None  # the script itself is not changed


def test_script_keeps_explicit_ids() -> None:
    model = ScriptedChatModel(responses=[AIMessage("a", id="mine")])
    assert model.invoke("q").id == "mine"


def test_exhausted_script_raises_a_clear_error() -> None:
    model = ScriptedChatModel(responses=["only"])
    model.invoke("q")
    with pytest.raises(ScriptExhaustedError, match="all 1 scripted responses were used"):
        model.invoke("q")


def test_script_can_cycle() -> None:
    model = ScriptedChatModel(responses=["a", "b"], cycle=True)
    assert [model.invoke("q").content for _ in range(5)] == ["a", "b", "a", "b", "a"]


def test_script_streams_too() -> None:
    model = ScriptedChatModel(responses=["one two three"])
    assert [c.content for c in model.stream("q")] == ["one ", "two ", "three"]


def _seed_graph(model: Any, tools: list[Any]) -> Any:
    """The seed demo (LangGraph README): MessageGraph, a chat model as a node,
    interrupt before the tools. Built with LangGraph, the test-only oracle."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, MessageGraph

    def should_continue(messages: list) -> str:
        return END if not messages[-1].tool_calls else "action"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MessageGraph is deprecated in LangGraph 1.x
        workflow = MessageGraph()
    workflow.add_node("agent", model)
    workflow.add_node("action", ToolNode(tools))
    workflow.set_entry_point("agent")
    workflow.add_conditional_edges("agent", should_continue)
    workflow.add_edge("action", "agent")
    return workflow.compile(checkpointer=InMemorySaver(), interrupt_before=["action"])


def test_seed_demo_runs_the_same_way_every_time() -> None:
    tools = [TavilySearchResults(max_results=1)]
    transcripts = []
    for _ in range(2):
        app = _seed_graph(build_seed_model().bind_tools(tools), tools)
        thread = {"configurable": {"thread_id": "4"}}
        first = [e[-1] for e in app.stream(QUESTION, thread, stream_mode="values")]
        assert app.get_state(thread).next == ("action",)
        rest = [e[-1] for e in app.stream(None, thread, stream_mode="values")]
        transcripts.append(
            [(m.type, m.content, m.id if m.type == "ai" else None,
              getattr(m, "tool_calls", None)) for m in first + rest]
        )
    assert transcripts[0] == transcripts[1]
    assert transcripts[0][-1][1] == "Based on the search: It's 60 degrees and foggy."


def test_messages_stream_mode_sees_tokens() -> None:
    from langgraph.graph import MessagesState, StateGraph

    model = ScriptedChatModel(responses=["It is sunny today"])
    builder = StateGraph(MessagesState)
    builder.add_node("agent", lambda state: {"messages": [model.invoke(state["messages"])]})
    builder.set_entry_point("agent")
    graph = builder.compile()
    tokens = [chunk.content for chunk, _ in graph.stream({"messages": ["hi"]}, stream_mode="messages")]
    assert tokens == ["It ", "is ", "sunny ", "today"]


def test_each_token_reaches_callbacks_once() -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    class Tokens(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            self.tokens.append(token)

    handler = Tokens()
    list(ScriptedChatModel(responses=["one two"]).stream("q", {"callbacks": [handler]}))
    assert [t for t in handler.tokens if t] == ["one ", "two"]
