"""State schemas, reducers, edges, fan-out/fan-in, Send and Command."""


import operator
from dataclasses import dataclass, field
from typing import Annotated, Optional

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from pydantic import BaseModel
from typing_extensions import TypedDict

from .harness import Unordered, capture, differential, thread
from .observe import history, snapshot, stream


class Chain(TypedDict):
    value: str
    log: Annotated[list, operator.add]


def chain_graph(ns, checkpointer=None):
    def a(state: Chain):
        return {"value": state["value"] + "a", "log": ["a"]}

    def b(state: Chain):
        return {"value": state["value"] + "b", "log": ["b"]}

    def c(state: Chain):
        return {"log": ["c"]}

    g = ns.StateGraph(Chain)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_node("c", c)
    g.add_edge(ns.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", ns.END)
    return g.compile(checkpointer=checkpointer)


@differential
def test_linear_chain(ns):
    graph = chain_graph(ns)
    return {
        "invoke": graph.invoke({"value": "x"}),
        "values": stream(graph, {"value": "x"}, stream_mode="values"),
        "updates": stream(graph, {"value": "x"}, stream_mode="updates"),
        "default_mode": stream(graph, {"value": "x"}),
    }


@differential
def test_linear_chain_with_checkpointer_state_and_history(ns):
    graph = chain_graph(ns, ns.InMemorySaver())
    cfg = thread()
    out = graph.invoke({"value": "x"}, cfg)
    return {"out": out, "state": snapshot(graph, cfg), "history": history(graph, cfg)}


@differential
def test_typeddict_partial_input_and_missing_keys(ns):
    class S(TypedDict):
        a: str
        b: Optional[int]
        items: Annotated[list[int], operator.add]

    def first(state: S):
        return {"items": [len(state)]}

    def second(state: S):
        return {"b": sum(state["items"])}

    g = ns.StateGraph(S)
    g.add_node("first", first)
    g.add_node("second", second)
    g.add_edge(ns.START, "first")
    g.add_edge("first", "second")
    graph = g.compile()
    return {
        "invoke": graph.invoke({"a": "x"}),
        "with_items": graph.invoke({"a": "x", "items": [5, 6]}),
        "updates": stream(graph, {"a": "y"}, stream_mode="updates"),
    }


@differential
def test_dataclass_state(ns):
    @dataclass
    class S:
        name: str
        count: int = 0
        tags: Annotated[list, operator.add] = field(default_factory=list)

    def bump(state: S):
        assert isinstance(state, S)
        return {"count": state.count + 1, "tags": [state.name]}

    def again(state: S):
        return {"count": state.count * 10, "tags": ["again"]}

    g = ns.StateGraph(S)
    g.add_node("bump", bump)
    g.add_node("again", again)
    g.add_edge(ns.START, "bump")
    g.add_edge("bump", "again")
    graph = g.compile()
    return {
        "invoke": graph.invoke({"name": "n"}),
        "invoke_obj": graph.invoke(S(name="m", count=2)),
        "updates": stream(graph, {"name": "n"}, stream_mode="updates"),
        "values": stream(graph, {"name": "n"}, stream_mode="values"),
    }


@differential
def test_pydantic_state(ns):
    class S(BaseModel):
        text: str
        n: int = 1
        seen: Annotated[list[str], operator.add] = []

    def double(state: S):
        assert isinstance(state, S)
        return {"n": state.n * 2, "seen": ["double"]}

    def shout(state: S):
        return {"text": state.text.upper(), "seen": ["shout"]}

    g = ns.StateGraph(S)
    g.add_node("double", double)
    g.add_node("shout", shout)
    g.add_edge(ns.START, "double")
    g.add_edge("double", "shout")
    graph = g.compile()
    return {
        "invoke": graph.invoke({"text": "hi"}),
        "invoke_model": graph.invoke(S(text="yo", n=5)),
        "values": stream(graph, {"text": "hi"}, stream_mode="values"),
        "updates": stream(graph, {"text": "hi"}, stream_mode="updates"),
        "bad_input": capture(lambda: graph.invoke({"text": 3})),
    }


@differential
def test_add_messages_with_remove_message(ns):
    class S(TypedDict):
        messages: Annotated[list, ns.add_messages]

    def talk(state: S):
        return {"messages": [AIMessage(content="reply", id="ai-1")]}

    def prune(state: S):
        return {"messages": [RemoveMessage(id=state["messages"][0].id)]}

    def edit(state: S):
        # Same id: replaces the message in place.
        return {"messages": [AIMessage(content="edited", id="ai-1")]}

    g = ns.StateGraph(S)
    g.add_node("talk", talk)
    g.add_node("prune", prune)
    g.add_node("edit", edit)
    g.add_edge(ns.START, "talk")
    g.add_edge("talk", "prune")
    g.add_edge("prune", "edit")
    graph = g.compile()
    return {
        "invoke": graph.invoke({"messages": [HumanMessage(content="first", id="h-1"), ("user", "second")]}),
        "values": stream(graph, {"messages": "hello"}, stream_mode="values"),
    }


@differential
def test_messages_state(ns):
    def bot(state):
        last = state["messages"][-1]
        return {"messages": [AIMessage(content=f"echo {last.content}")]}

    g = ns.StateGraph(ns.MessagesState)
    g.add_node("bot", bot)
    g.add_edge(ns.START, "bot")
    g.add_edge("bot", ns.END)
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    first = graph.invoke({"messages": [("user", "hi")]}, cfg)
    second = graph.invoke({"messages": [{"role": "user", "content": "again"}]}, cfg)
    return {"first": first, "second": second, "state": snapshot(graph, cfg)}


def router_graph(ns, with_map: bool):
    class S(TypedDict):
        n: int
        path: Annotated[list, operator.add]

    def start(state: S):
        return {"path": ["start"]}

    def small(state: S):
        return {"path": ["small"]}

    def big(state: S):
        return {"path": ["big"]}

    def route(state: S):
        if state["n"] < 0:
            return "stop" if with_map else ns.END
        return ("lo" if state["n"] < 10 else "hi") if with_map else ("small" if state["n"] < 10 else "big")

    g = ns.StateGraph(S)
    g.add_node("start", start)
    g.add_node("small", small)
    g.add_node("big", big)
    g.add_edge(ns.START, "start")
    if with_map:
        g.add_conditional_edges("start", route, {"lo": "small", "hi": "big", "stop": ns.END})
    else:
        g.add_conditional_edges("start", route)
    g.add_edge("small", ns.END)
    g.add_edge("big", ns.END)
    return g.compile()


@differential
def test_conditional_edges_with_path_map(ns):
    graph = router_graph(ns, with_map=True)
    return {
        n: {"invoke": graph.invoke({"n": n}), "updates": stream(graph, {"n": n}, stream_mode="updates")}
        for n in (3, 30, -1)
    }


@differential
def test_conditional_edges_without_path_map(ns):
    graph = router_graph(ns, with_map=False)
    return {
        n: {"invoke": graph.invoke({"n": n}), "updates": stream(graph, {"n": n}, stream_mode="updates")}
        for n in (3, 30, -1)
    }


@differential
def test_conditional_edge_to_several_nodes_and_list_path_map(ns):
    class S(TypedDict):
        path: Annotated[list, operator.add]

    g = ns.StateGraph(S)
    g.add_node("split", lambda s: {"path": ["split"]})
    g.add_node("x", lambda s: {"path": ["x"]})
    g.add_node("y", lambda s: {"path": ["y"]})
    g.add_edge(ns.START, "split")
    g.add_conditional_edges("split", lambda s: ["x", "y"], ["x", "y"])
    graph = g.compile()
    chunks = stream(graph, {"path": []}, stream_mode="updates")
    return {
        "invoke": graph.invoke({"path": []}),
        # Quick parallel tasks stream in task order.
        "updates": chunks,
    }


class Fan(TypedDict):
    log: Annotated[list, operator.add]


def fan_graph(ns):
    g = ns.StateGraph(Fan)
    g.add_node("start", lambda s: {"log": ["start"]})
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_node("b2", lambda s: {"log": ["b2"]})
    g.add_node("c", lambda s: {"log": ["c:" + ",".join(s["log"])]})
    g.add_edge(ns.START, "start")
    g.add_edge("start", "a")
    g.add_edge("start", "b")
    g.add_edge("b", "b2")
    # c waits for both a and b2, although b2 finishes one step later.
    g.add_edge(["a", "b2"], "c")
    g.add_edge("c", ns.END)
    return g


@differential
def test_fan_out_fan_in_join(ns):
    graph = fan_graph(ns).compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    # durability="sync": with LangGraph's default ("async") the checkpoint of
    # the a/b step may be saved after b2 already wrote the join barrier, so its
    # history shows "c" as next there (see DIFFERENCES.md). lgdist always
    # saves a step's checkpoint before running the next step.
    chunks = stream(graph, {"log": []}, cfg, stream_mode="updates", durability="sync")
    return {
        # With a checkpointer LangGraph's order of parallel updates varies
        # between runs (each completion saves its writes first).
        "updates": [chunks[0], Unordered(chunks[1:3]), *chunks[3:]],
        "state": snapshot(graph, cfg),
        "history": history(graph, cfg),
        "invoke": graph.invoke({"log": []}, thread()),
    }


@differential
def test_send_map_reduce(ns):
    class S(TypedDict):
        subjects: list[str]
        jokes: Annotated[list, operator.add]
        best: str

    class JokeState(TypedDict):
        subject: str

    def make_joke(state: JokeState):
        return {"jokes": [f"joke about {state['subject']}"]}

    def fan(state: S):
        return [ns.Send("make_joke", {"subject": s}) for s in state["subjects"]]

    def pick(state: S):
        return {"best": sorted(state["jokes"])[0]}

    g = ns.StateGraph(S)
    g.add_node("make_joke", make_joke)
    g.add_node("pick", pick)
    g.add_conditional_edges(ns.START, fan, ["make_joke"])
    g.add_edge("make_joke", "pick")
    g.add_edge("pick", ns.END)
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    inp = {"subjects": ["cats", "dogs", "owls"]}
    chunks = stream(graph, inp, cfg, stream_mode="updates")
    return {
        # Reducer order for Send tasks is send order, whatever finishes first.
        "invoke": graph.invoke(inp, thread()),
        "updates": [Unordered(chunks[:3]), *chunks[3:]],
        "state": snapshot(graph, cfg),
        "history": history(graph, cfg),
    }


@differential
def test_send_from_node_command_goto(ns):
    class S(TypedDict):
        items: list[int]
        out: Annotated[list, operator.add]

    def dispatch(state: S):
        return ns.Command(update={"out": ["dispatched"]}, goto=[ns.Send("square", i) for i in state["items"]])

    def square(i: int):
        return {"out": [i * i]}

    g = ns.StateGraph(S)
    g.add_node("dispatch", dispatch)
    g.add_node("square", square)
    g.add_edge(ns.START, "dispatch")
    graph = g.compile()
    chunks = stream(graph, {"items": [1, 2, 3]}, stream_mode="updates")
    return {"invoke": graph.invoke({"items": [1, 2, 3]}), "updates": chunks}


@differential
def test_command_goto_and_update(ns):
    class S(TypedDict):
        n: int
        trail: Annotated[list, operator.add]

    def decide(state: S):
        target = "even" if state["n"] % 2 == 0 else "odd"
        return ns.Command(update={"trail": ["decide"], "n": state["n"] + 100}, goto=target)

    def even(state: S):
        return ns.Command(update={"trail": ["even"]}, goto=ns.END)

    def odd(state: S):
        return {"trail": ["odd"]}

    g = ns.StateGraph(S)
    g.add_node("decide", decide)
    g.add_node("even", even)
    g.add_node("odd", odd)
    g.add_edge(ns.START, "decide")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    return {
        "2": graph.invoke({"n": 2}, thread()),
        "3": stream(graph, {"n": 3}, thread(), stream_mode="updates"),
        "values": stream(graph, {"n": 4}, cfg, stream_mode="values"),
        "state": snapshot(graph, cfg),
    }


@differential
def test_input_and_output_schemas(ns):
    class In(TypedDict):
        question: str

    class Out(TypedDict):
        answer: str

    class Overall(In, Out):
        scratch: str

    def think(state: In):
        return {"scratch": "thinking about " + state["question"]}

    def answer(state: Overall):
        return {"answer": state["scratch"].upper()}

    g = ns.StateGraph(Overall, input_schema=In, output_schema=Out)
    g.add_node("think", think)
    g.add_node("answer", answer)
    g.add_edge(ns.START, "think")
    g.add_edge("think", "answer")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    return {
        "invoke": graph.invoke({"question": "q", "ignored": 1}, cfg),
        "values": stream(graph, {"question": "q"}, thread(), stream_mode="values"),
        "updates": stream(graph, {"question": "q"}, thread(), stream_mode="updates"),
        "state": snapshot(graph, cfg),
    }


@differential
def test_node_level_input_schema(ns):
    class S(TypedDict):
        a: str
        b: str
        seen: Annotated[list, operator.add]

    class OnlyA(TypedDict):
        a: str

    def reader(state: OnlyA):
        return {"seen": [sorted(state)], "b": "from-reader"}

    def full(state: S):
        return {"seen": [sorted(state)]}

    g = ns.StateGraph(S)
    g.add_node("reader", reader, input_schema=OnlyA)
    g.add_node("full", full)
    g.add_edge(ns.START, "reader")
    g.add_edge("reader", "full")
    graph = g.compile()
    return {"invoke": graph.invoke({"a": "x", "b": "y"})}


@differential
def test_multiple_threads_are_isolated(ns):
    graph = chain_graph(ns, ns.InMemorySaver())
    one, two = thread("one"), thread("two")
    graph.invoke({"value": "1"}, one)
    graph.invoke({"value": "2"}, two)
    graph.invoke({"value": "1again"}, one)
    return {
        "one": snapshot(graph, one),
        "two": snapshot(graph, two),
        "one_history": history(graph, one),
        "two_history": history(graph, two),
        "fresh": snapshot(graph, thread("never")),
    }
