"""Human in the loop: interrupt() and Command(resume), static breakpoints,
update_state, replay and forks."""

import operator
from typing import Annotated

from typing_extensions import TypedDict

from .harness import Unordered, capture, differential, thread
from .observe import history, modes, snapshot, stream


class Review(TypedDict):
    draft: str
    verdict: str
    log: Annotated[list, operator.add]


def review_graph(ns, **compile_kwargs):
    def write(state: Review):
        return {"draft": "draft v1", "log": ["write"]}

    def review(state: Review):
        answer = ns.interrupt({"question": "approve?", "draft": state["draft"]})
        return {"verdict": answer, "log": ["review"]}

    def publish(state: Review):
        return {"log": ["publish:" + state["verdict"]]}

    g = ns.StateGraph(Review)
    g.add_node("write", write)
    g.add_node("review", review)
    g.add_node("publish", publish)
    g.add_edge(ns.START, "write")
    g.add_edge("write", "review")
    g.add_edge("review", "publish")
    g.add_edge("publish", ns.END)
    return g.compile(checkpointer=ns.InMemorySaver(), **compile_kwargs)


@differential
def test_interrupt_then_resume(ns):
    graph = review_graph(ns)
    cfg = thread()
    first = stream(graph, {"log": []}, cfg, stream_mode="updates")
    paused = snapshot(graph, cfg)
    resumed = stream(graph, ns.Command(resume="yes"), cfg, stream_mode="updates")
    return {
        "first": first,
        "paused": paused,
        "resumed": resumed,
        "final": snapshot(graph, cfg),
        "history": history(graph, cfg),
    }


@differential
def test_interrupt_invoke_returns_interrupt_key(ns):
    graph = review_graph(ns)
    cfg = thread()
    out = graph.invoke({"log": []}, cfg)
    again = graph.invoke(ns.Command(resume="ok"), cfg)
    return {"out": out, "again": again}


@differential
def test_interrupt_values_stream(ns):
    graph = review_graph(ns)
    cfg = thread()
    return {
        "first": stream(graph, {"log": []}, cfg, stream_mode="values"),
        "second": stream(graph, ns.Command(resume="no"), cfg, stream_mode="values"),
    }


@differential
def test_two_interrupts_in_one_node(ns):
    class S(TypedDict):
        name: str
        age: int
        calls: Annotated[list, operator.add]

    def ask(state: S):
        name = ns.interrupt("name?")
        age = ns.interrupt(f"age of {name}?")
        return {"name": name, "age": age, "calls": ["done"]}

    g = ns.StateGraph(S)
    g.add_node("ask", ask)
    g.add_edge(ns.START, "ask")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    return {
        "1": graph.invoke({"calls": []}, cfg),
        "s1": snapshot(graph, cfg),
        "2": graph.invoke(ns.Command(resume="Ada"), cfg),
        "s2": snapshot(graph, cfg),
        "3": graph.invoke(ns.Command(resume=36), cfg),
        "s3": snapshot(graph, cfg),
        "history": history(graph, cfg),
    }


def parallel_questions_graph(ns):
    class S(TypedDict):
        answers: Annotated[list, operator.add]

    def left(state: S):
        return {"answers": ["left=" + ns.interrupt("left?")]}

    def right(state: S):
        return {"answers": ["right=" + ns.interrupt("right?")]}

    g = ns.StateGraph(S)
    g.add_node("left", left)
    g.add_node("right", right)
    g.add_edge(ns.START, "left")
    g.add_edge(ns.START, "right")
    return g.compile(checkpointer=ns.InMemorySaver())


@differential
def test_resume_two_parallel_interrupts_by_id(ns):
    graph = parallel_questions_graph(ns)
    cfg = thread()
    first = graph.invoke({"answers": []}, cfg)
    state = graph.get_state(cfg)
    by_value = {i.value: i.id for i in state.interrupts}
    # One value for two pending interrupts is ambiguous. lgdist raises its
    # own AmbiguousResumeError, a RuntimeError like LangGraph's.
    try:
        graph.invoke(ns.Command(resume="x"), cfg)
        ambiguous = "no error"
    except RuntimeError as exc:
        ambiguous = str(exc)
    # Answer only one: the other stays pending.
    partial = graph.invoke(ns.Command(resume={by_value["left?"]: "L"}), cfg)
    mid = snapshot(graph, cfg)
    rest = graph.invoke(ns.Command(resume={by_value["right?"]: "R"}), cfg)
    return {
        "first_interrupts": Unordered(first["__interrupt__"]),
        "interrupt_values": sorted(by_value),
        "ambiguous": ambiguous,
        "partial_interrupts": [i.value for i in partial["__interrupt__"]],
        "partial_answers": partial["answers"],
        "mid_next": mid["next"],
        "mid_interrupts": [i.value for i in mid["interrupts"]],
        "rest": rest,
        "final": snapshot(graph, cfg),
    }


@differential
def test_resume_both_parallel_interrupts_at_once(ns):
    graph = parallel_questions_graph(ns)
    cfg = thread()
    graph.invoke({"answers": []}, cfg)
    ids = {i.value: i.id for i in graph.get_state(cfg).interrupts}
    out = graph.invoke(ns.Command(resume={ids["left?"]: "L", ids["right?"]: "R"}), cfg)
    return {"out": out, "state": snapshot(graph, cfg)}


@differential
def test_interrupt_before_at_compile_then_resume_with_none(ns):
    graph = review_graph(ns, interrupt_before=["publish"])
    cfg = thread()
    first = stream(graph, {"log": []}, cfg, stream_mode="updates")
    second = stream(graph, ns.Command(resume="fine"), cfg, stream_mode="updates")
    at_breakpoint = snapshot(graph, cfg)
    third = stream(graph, None, cfg, stream_mode="updates")
    return {
        "first": first,
        "second": second,
        "at_breakpoint": at_breakpoint,
        "third": third,
        "final": snapshot(graph, cfg),
        "history": history(graph, cfg),
    }


@differential
def test_interrupt_after_at_compile(ns):
    graph = chain_with_breakpoints(ns, interrupt_after=["a"])
    cfg = thread()
    return {
        "first": stream(graph, {"log": []}, cfg, stream_mode="values"),
        "state": snapshot(graph, cfg),
        "second": stream(graph, None, cfg, stream_mode="values"),
        "final": snapshot(graph, cfg),
    }


def chain_with_breakpoints(ns, **compile_kwargs):
    class S(TypedDict):
        log: Annotated[list, operator.add]

    g = ns.StateGraph(S)
    for name in ("a", "b", "c"):
        g.add_node(name, lambda s, name=name: {"log": [name]})
    g.add_edge(ns.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    return g.compile(checkpointer=ns.InMemorySaver(), **compile_kwargs)


@differential
def test_breakpoints_per_call(ns):
    graph = chain_with_breakpoints(ns)
    cfg = thread()
    out = {
        "1": stream(graph, {"log": []}, cfg, stream_mode="updates", interrupt_before=["b"]),
        "s1": snapshot(graph, cfg),
        "2": stream(graph, None, cfg, stream_mode="updates", interrupt_after=["b"]),
        "s2": snapshot(graph, cfg),
        "3": graph.invoke(None, cfg),
    }
    cfg2 = thread()
    out["all"] = stream(graph, {"log": []}, cfg2, stream_mode="updates", interrupt_before="*")
    out["all_again"] = stream(graph, None, cfg2, stream_mode="updates", interrupt_before="*")
    out["all_state"] = snapshot(graph, cfg2)
    return out


@differential
def test_invoke_on_interrupted_breakpoint_returns_values(ns):
    graph = chain_with_breakpoints(ns, interrupt_before=["c"])
    cfg = thread()
    return {
        "invoke": graph.invoke({"log": []}, cfg),
        "resume": graph.invoke(None, cfg),
        "finished_again": graph.invoke(None, cfg),
        "finished_stream": stream(graph, None, cfg, stream_mode=["values", "updates"]),
    }


@differential
def test_update_state_without_as_node_then_continue(ns):
    graph = chain_with_breakpoints(ns, interrupt_before=["b"])
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    new_config = graph.update_state(cfg, {"log": ["human"]})
    after_update = snapshot(graph, cfg)
    rest = stream(graph, None, cfg, stream_mode="updates")
    return {
        "new_config_keys": sorted(new_config["configurable"]),
        "after_update": after_update,
        "rest": rest,
        "history": history(graph, cfg),
    }


@differential
def test_update_state_as_node_then_continue(ns):
    graph = chain_with_breakpoints(ns, interrupt_before=["b"])
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    # As if "b" ran: the graph continues with "c".
    graph.update_state(cfg, {"log": ["b-by-human"]}, as_node="b")
    after = snapshot(graph, cfg)
    rest = stream(graph, None, cfg, stream_mode="updates")
    return {"after": after, "rest": rest, "history": history(graph, cfg)}


@differential
def test_update_state_on_new_thread(ns):
    graph = chain_with_breakpoints(ns)
    cfg = thread()
    graph.update_state(cfg, {"log": ["seed"]}, as_node="a")
    state = snapshot(graph, cfg)
    rest = graph.invoke(None, cfg)
    return {"state": state, "rest": rest, "history": history(graph, cfg)}


@differential
def test_update_state_on_interrupted_node_then_resume(ns):
    graph = review_graph(ns)
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    graph.update_state(cfg, {"draft": "draft v2"})
    mid = snapshot(graph, cfg)
    out = graph.invoke(ns.Command(resume="approved"), cfg)
    return {"mid": mid, "out": out, "history": history(graph, cfg)}


@differential
def test_replay_from_past_checkpoint(ns):
    calls = []

    class S(TypedDict):
        log: Annotated[list, operator.add]

    def node(name):
        def run(state):
            calls.append(name)
            return {"log": [name]}

        return run

    g = ns.StateGraph(S)
    for name in ("a", "b", "c"):
        g.add_node(name, node(name))
    g.add_edge(ns.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    past = [s for s in graph.get_state_history(cfg) if s.next == ("b",)][0]
    calls.clear()
    replayed = stream(graph, None, past.config, stream_mode="updates")
    return {
        "past_values": past.values,
        "replayed": replayed,
        "calls_on_replay": list(calls),
        "history": history(graph, cfg),
        "state_at_past": snapshot(graph, past.config),
    }


@differential
def test_fork_by_updating_a_past_checkpoint(ns):
    graph = chain_with_breakpoints(ns)
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    past = [s for s in graph.get_state_history(cfg) if s.next == ("c",)][0]
    fork_config = graph.update_state(past.config, {"log": ["forked"]})
    fork_state = snapshot(graph, fork_config)
    out = graph.invoke(None, fork_config)
    return {
        "fork_state": fork_state,
        "out": out,
        "latest": snapshot(graph, cfg),
        "history": history(graph, cfg),
    }


@differential
def test_interrupt_stream_modes_together(ns):
    graph = review_graph(ns)
    cfg = thread()
    chunks = stream(graph, {"log": []}, cfg, stream_mode=["updates", "values"])
    more = stream(graph, ns.Command(resume="yes"), cfg, stream_mode=["values", "updates"])
    return {"first": chunks, "more": more, "updates_only": modes(chunks, "updates")}


@differential
def test_interrupt_without_checkpointer_is_an_error(ns):
    class S(TypedDict):
        x: str

    g = ns.StateGraph(S)
    g.add_node("ask", lambda s: {"x": ns.interrupt("q")})
    g.add_edge(ns.START, "ask")
    graph = g.compile()
    return {"invoke": capture(lambda: graph.invoke({"x": "a"}))}


@differential
def test_command_update_and_goto_as_input(ns):
    graph = chain_with_breakpoints(ns, interrupt_before=["b"])
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    out = stream(graph, ns.Command(update={"log": ["cmd"]}, goto="c"), cfg, stream_mode="updates")
    # b (pending at the breakpoint) and c (the goto) run in the same step.
    return {"out": [Unordered(out[:2]), *out[2:]], "state": snapshot(graph, cfg), "history": history(graph, cfg)}


@differential
def test_new_input_discards_the_tasks_a_breakpoint_left_pending(ns):
    """After a static breakpoint (or a cancelled run) the thread's latest
    checkpoint still has tasks to run; new input discards them rather than
    running them with the new input."""
    graph = review_graph(ns, interrupt_before=["review"])
    cfg = thread()
    first = graph.invoke({"log": []}, cfg)
    paused = snapshot(graph, cfg)
    second = stream(graph, {"draft": "fresh", "log": ["new input"]}, cfg, stream_mode="updates")
    return {"first": first, "paused": paused, "second": second, "final": snapshot(graph, cfg), "history": history(graph, cfg)}


@differential
def test_new_input_discards_an_unanswered_interrupt(ns):
    graph = review_graph(ns)
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    second = stream(graph, {"draft": "fresh", "log": ["new input"]}, cfg, stream_mode="updates")
    return {"second": second, "final": snapshot(graph, cfg), "history": history(graph, cfg)}


def fanout_graph(ns, **compile_kwargs):
    class Fan(TypedDict):
        topic: str
        items: list
        done: Annotated[list, operator.add]

    def split(state: Fan):
        return {"items": [f"{state['topic']}-{i}" for i in range(2)]}

    def route(state: Fan):
        return [ns.Send("work", {"item": item}) for item in state["items"]]

    def work(arg: dict):
        return {"done": [arg["item"]]}

    g = ns.StateGraph(Fan)
    g.add_node("split", split)
    g.add_node("work", work)
    g.add_edge(ns.START, "split")
    g.add_conditional_edges("split", route, ["work"])
    g.add_edge("work", ns.END)
    return g.compile(checkpointer=ns.InMemorySaver(), **compile_kwargs)


@differential
def test_new_input_discards_pending_sends(ns):
    graph = fanout_graph(ns, interrupt_before=["work"])
    cfg = thread()
    graph.invoke({"topic": "old", "done": []}, cfg)
    paused = snapshot(graph, cfg)
    second = stream(graph, {"topic": "new"}, cfg, stream_mode="updates")
    return {"paused": paused, "second": second, "final": snapshot(graph, cfg), "history": history(graph, cfg)}
