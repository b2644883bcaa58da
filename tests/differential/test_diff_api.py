"""Smaller corners of the builder and state API."""

import operator
from typing import Annotated

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from pydantic import BaseModel
from typing_extensions import TypedDict

from .harness import Unordered, capture, differential, thread
from .observe import history, snapshot, stream


class Log(TypedDict):
    log: Annotated[list, operator.add]


@differential
def test_add_sequence_and_conditional_entry_point(ns):
    g = ns.StateGraph(Log)
    g.add_sequence([("one", lambda s: {"log": [1]}), ("two", lambda s: {"log": [2]})])
    g.add_node("other", lambda s: {"log": ["other"]})
    g.set_conditional_entry_point(lambda s: "one" if not s["log"] else "other", ["one", "other"])
    graph = g.compile()
    return {
        "empty": graph.invoke({"log": []}),
        "nonempty": graph.invoke({"log": ["x"]}),
        "updates": stream(graph, {"log": []}, stream_mode="updates"),
    }


@differential
def test_history_limit_filter_and_before(ns):
    g = ns.StateGraph(Log)
    g.add_sequence([(n, lambda s, n=n: {"log": [n]}) for n in ("a", "b", "c")])
    g.add_edge(ns.START, "a")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    full = list(graph.get_state_history(cfg))
    return {
        "limit": [s.metadata["step"] for s in graph.get_state_history(cfg, limit=2)],
        "filter": [s.metadata["step"] for s in graph.get_state_history(cfg, filter={"source": "input"})],
        "before": [s.metadata["step"] for s in graph.get_state_history(cfg, before=full[1].config)],
    }


@differential
def test_update_state_as_node_runs_its_conditional_edges(ns):
    class S(TypedDict):
        n: int
        log: Annotated[list, operator.add]

    g = ns.StateGraph(S)
    g.add_node("decide", lambda s: {"log": ["decide"]})
    g.add_node("big", lambda s: {"log": ["big"]})
    g.add_node("small", lambda s: {"log": ["small"]})
    g.add_edge(ns.START, "decide")
    g.add_conditional_edges("decide", lambda s: "big" if s["n"] > 10 else "small")
    graph = g.compile(checkpointer=ns.InMemorySaver(), interrupt_before=["decide"])
    cfg = thread()
    graph.invoke({"n": 1, "log": []}, cfg)
    # As if "decide" ran and set n: the router sees the updated n.
    graph.update_state(cfg, {"n": 50, "log": ["human"]}, as_node="decide")
    after = snapshot(graph, cfg)
    return {"after": after, "rest": graph.invoke(None, cfg), "history": history(graph, cfg)}


@differential
def test_update_state_with_a_command_goto_like_update_and_pydantic_state(ns):
    class S(BaseModel):
        name: str = ""
        visits: Annotated[list[str], operator.add] = []

    g = ns.StateGraph(S)
    g.add_node("greet", lambda s: {"visits": ["greet:" + s.name]})
    g.add_node("bye", lambda s: {"visits": ["bye:" + s.name]})
    g.add_edge(ns.START, "greet")
    g.add_edge("greet", "bye")
    graph = g.compile(checkpointer=ns.InMemorySaver(), interrupt_before=["bye"])
    cfg = thread()
    first = graph.invoke({"name": "ada"}, cfg)
    graph.update_state(cfg, {"name": "grace"})
    return {"first": first, "mid": snapshot(graph, cfg), "rest": graph.invoke(None, cfg)}


@differential
def test_remove_all_messages_and_tool_messages(ns):
    def reset(state):
        return {"messages": [RemoveMessage(id="__remove_all__"), AIMessage(content="fresh start", id="ai-2")]}

    g = ns.StateGraph(ns.MessagesState)
    g.add_node("reset", reset)
    g.add_edge(ns.START, "reset")
    graph = g.compile()
    inp = {"messages": [HumanMessage(content="a", id="h1"), AIMessage(content="b", id="a1")]}
    return {
        "out": graph.invoke(inp),
        "unknown_remove": capture(
            lambda: graph.invoke({"messages": [RemoveMessage(id="nope")]})
        ),
    }


@differential
def test_overwrite_bypasses_the_reducer(ns):
    g = ns.StateGraph(Log)
    g.add_node("grow", lambda s: {"log": ["grow"]})
    g.add_node("reset", lambda s: {"log": ns.Overwrite(["reset"])})
    g.add_edge(ns.START, "grow")
    g.add_edge("grow", "reset")
    return {"out": g.compile().invoke({"log": ["input"]})}


@differential
def test_send_tasks_interrupt_and_resume_by_id(ns):
    class S(TypedDict):
        items: list[str]
        answers: Annotated[list, operator.add]

    def ask(item: str):
        return {"answers": [f"{item}={ns.interrupt(f'value for {item}?')}"]}

    g = ns.StateGraph(S)
    g.add_node("ask", ask)
    g.add_conditional_edges(ns.START, lambda s: [ns.Send("ask", i) for i in s["items"]], ["ask"])
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    first = graph.invoke({"items": ["x", "y"]}, cfg)
    pending = graph.get_state(cfg)
    ids = {i.value: i.id for i in pending.interrupts}
    out = graph.invoke(ns.Command(resume={ids["value for x?"]: 1, ids["value for y?"]: 2}), cfg)
    return {
        "first_values": sorted(i.value for i in first["__interrupt__"]),
        "pending_next": pending.next,
        "pending_tasks": [(t.name, t.path[:2], [i.value for i in t.interrupts]) for t in pending.tasks],
        "out": out,
        "final": snapshot(graph, cfg),
    }


@differential
def test_interrupt_after_a_parallel_step(ns):
    g = ns.StateGraph(Log)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_node("c", lambda s: {"log": ["c"]})
    g.add_edge(ns.START, "a")
    g.add_edge(ns.START, "b")
    g.add_edge("a", "c")
    graph = g.compile(checkpointer=ns.InMemorySaver(), interrupt_after=["b"])
    cfg = thread()
    first = stream(graph, {"log": []}, cfg, stream_mode="updates")
    return {
        "first": [Unordered(first[:2]), *first[2:]],
        "state": snapshot(graph, cfg),
        "rest": stream(graph, None, cfg, stream_mode="updates"),
        "final": snapshot(graph, cfg),
    }


@differential
def test_stream_with_subgraphs_flag_shapes_chunks(ns):
    g = ns.StateGraph(Log)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_edge(ns.START, "a")
    graph = g.compile()
    return {
        "single": stream(graph, {"log": []}, stream_mode="updates", subgraphs=True),
        "multi": stream(graph, {"log": []}, stream_mode=["updates", "values"], subgraphs=True),
    }


@differential
def test_node_reading_the_config_of_a_resumed_run(ns):
    class S(TypedDict):
        seen: Annotated[list, operator.add]

    def ask(state: S, config):
        answer = ns.interrupt("q")
        return {"seen": [(answer, config["configurable"].get("who"), config["metadata"]["langgraph_step"])]}

    g = ns.StateGraph(S)
    g.add_node("ask", ask)
    g.add_edge(ns.START, "ask")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    graph.invoke({"seen": []}, {**cfg, "configurable": {**cfg["configurable"], "who": "first"}})
    out = graph.invoke(ns.Command(resume="A"), {**cfg, "configurable": {**cfg["configurable"], "who": "second"}})
    return {"out": out}


@differential
def test_stream_channels_are_every_state_key_even_with_an_output_schema(ns):
    class State(TypedDict):
        question: str
        answer: str
        scratch: list

    class Output(TypedDict):
        answer: str

    g = ns.StateGraph(State, output_schema=Output)
    g.add_node("solve", lambda s: {"answer": "42"})
    g.add_edge(ns.START, "solve")
    graph = g.compile()
    return {"stream_channels": sorted(graph.stream_channels)}
