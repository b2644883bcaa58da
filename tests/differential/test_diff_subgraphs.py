"""Subgraphs: a compiled graph used as a node (or invoked inside one) runs
with its parent's checkpointer under the task's namespace; its interrupts
stop the parent and resume where they stopped; ``stream(subgraphs=True)``
shows its chunks under ``("node:<task id>", ...)`` namespaces."""

import operator
from typing import Annotated

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from typing_extensions import TypedDict

from .harness import Unordered, differential, thread
from .observe import history, snapshot, stream


class Log(TypedDict):
    log: Annotated[list, operator.add]


def counted(calls, name, update=None):
    """A node that counts its runs and logs its name."""

    def node(state):
        calls[name] = calls.get(name, 0) + 1
        return update if update is not None else {"log": [name]}

    return node


def asking(ns, calls, name):
    """A node that counts its runs and asks a question."""

    def node(state):
        calls[name] = calls.get(name, 0) + 1
        return {"log": [f"{name}={ns.interrupt(name + '?')}"]}

    return node


def ask_subgraph(ns, calls, **compile_kwargs):
    """START -> prep -> ask (interrupts) -> END."""
    g = ns.StateGraph(Log)
    g.add_node("prep", counted(calls, "prep"))
    g.add_node("ask", asking(ns, calls, "ask"))
    g.add_edge(ns.START, "prep")
    g.add_edge("prep", "ask")
    return g.compile(**compile_kwargs)


def parent_of(ns, sub, calls, **compile_kwargs):
    """START -> before -> sub -> after -> END, with a checkpointer."""
    g = ns.StateGraph(Log)
    g.add_node("before", counted(calls, "before"))
    g.add_node("sub", sub)
    g.add_node("after", counted(calls, "after"))
    g.add_edge(ns.START, "before")
    g.add_edge("before", "sub")
    g.add_edge("sub", "after")
    return g.compile(checkpointer=ns.InMemorySaver(), **compile_kwargs)


def namespaces(saver, cfg):
    """How many checkpoints the thread holds per namespace (task ids out)."""
    counts = {}
    for saved in saver.list({"configurable": {"thread_id": cfg["configurable"]["thread_id"]}}):
        key = "|".join(p.split(":")[0] for p in saved.config["configurable"]["checkpoint_ns"].split("|"))
        counts[key] = counts.get(key, 0) + 1
    return counts


@differential
def test_subgraph_node_values_updates_and_parent_history(ns):
    calls = {}
    g = ns.StateGraph(Log)
    g.add_node("one", counted(calls, "one"))
    g.add_node("two", counted(calls, "two"))
    g.add_edge(ns.START, "one")
    g.add_edge("one", "two")
    graph = parent_of(ns, g.compile(), calls)
    cfg = thread()
    return {
        "invoke": graph.invoke({"log": []}, cfg),
        "updates": stream(graph, {"log": ["again"]}, thread(), stream_mode="updates"),
        "state": snapshot(graph, cfg),
        # The subgraph's checkpoints live in the thread under its own
        # namespace; the parent's history lists only the parent's.
        "history": history(graph, cfg),
        "namespaces": namespaces(graph.checkpointer, cfg),
        "calls": calls,
    }


@differential
def test_stream_subgraphs_true_namespaces_chunks(ns):
    calls = {}
    g = ns.StateGraph(Log)
    g.add_node("one", counted(calls, "one"))
    g.add_edge(ns.START, "one")
    graph = parent_of(ns, g.compile(), calls)
    return {
        "single": stream(graph, {"log": []}, thread(), stream_mode="updates", subgraphs=True),
        "multi": stream(graph, {"log": []}, thread(), stream_mode=["values", "updates"], subgraphs=True),
        "flag_off": stream(graph, {"log": []}, thread(), stream_mode=["values", "updates"]),
    }


@differential
def test_interrupt_inside_subgraph_then_resume(ns):
    calls = {}
    graph = parent_of(ns, ask_subgraph(ns, calls), calls)
    cfg = thread()
    first = stream(graph, {"log": []}, cfg, stream_mode=["updates", "values"], subgraphs=True)
    paused = graph.get_state(cfg)
    calls_at_pause = dict(calls)
    resumed = stream(graph, ns.Command(resume="yes"), cfg, stream_mode=["updates", "values"], subgraphs=True)
    return {
        "first": first,
        "paused": snapshot(graph, cfg),
        # The parent's task points at the subgraph's checkpoints.
        "paused_task_state": [t.state for t in paused.tasks],
        "calls_at_pause": calls_at_pause,
        "resumed": resumed,
        # prep ran once: the subgraph resumed where it stopped.
        "calls": calls,
        "final": snapshot(graph, cfg),
        "history": history(graph, cfg),
    }


@differential
def test_interrupt_inside_subgraph_invoke_and_plain_stream(ns):
    calls = {}
    graph = parent_of(ns, ask_subgraph(ns, calls), calls)
    cfg = thread()
    out = graph.invoke({"log": []}, cfg)
    cfg2 = thread()
    plain_stream = stream(graph, {"log": []}, cfg2, stream_mode="updates")
    return {
        "out": out,
        "plain_stream": plain_stream,
        "again": graph.invoke(ns.Command(resume="ok"), cfg),
        "plain_resumed": stream(graph, ns.Command(resume="ok2"), cfg2, stream_mode="updates"),
        "calls": calls,
    }


@differential
def test_get_state_with_subgraphs(ns):
    calls = {}
    graph = parent_of(ns, ask_subgraph(ns, calls), calls)
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    deep = graph.get_state(cfg, subgraphs=True)
    sub_state = deep.tasks[0].state
    return {
        # Whole snapshots: configs with checkpoint_ns / checkpoint_map,
        # metadata with parents, tasks, interrupts (ids normalized).
        "deep": deep,
        "shallow": graph.get_state(cfg),
        # A subgraph's config reads its state and its history directly.
        "by_config": graph.get_state(graph.get_state(cfg).tasks[0].state),
        "sub_history": [
            (s.values, s.next, s.metadata) for s in graph.get_state_history(graph.get_state(cfg).tasks[0].state)
        ],
        # A given subgraph checkpoint; its config is left out: LangGraph's
        # carries its internal "__pregel_checkpointer" (see DIFFERENCES.md).
        "sub_checkpoint": graph.get_state(sub_state.config)._replace(config=None),
        "after_resume": (graph.invoke(ns.Command(resume="y"), cfg), graph.get_state(cfg, subgraphs=True)),
    }


@differential
def test_nested_two_levels_interrupt_and_resume(ns):
    calls = {}
    inner = ask_subgraph(ns, calls)
    m = ns.StateGraph(Log)
    m.add_node("m1", counted(calls, "m1"))
    m.add_node("inner", inner)
    m.add_edge(ns.START, "m1")
    m.add_edge("m1", "inner")
    mid = m.compile()
    g = ns.StateGraph(Log)
    g.add_node("mid", mid)
    g.add_node("last", counted(calls, "last"))
    g.add_edge(ns.START, "mid")
    g.add_edge("mid", "last")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    first = stream(graph, {"log": []}, cfg, stream_mode="updates", subgraphs=True)
    deep = graph.get_state(cfg, subgraphs=True)
    (pending,) = deep.interrupts
    # Answered by interrupt id: the id names the interrupt() two levels down.
    resumed = stream(graph, ns.Command(resume={pending.id: "deep"}), cfg, stream_mode="updates", subgraphs=True)
    return {
        "first": first,
        "deep": deep,
        "resumed": resumed,
        "calls": calls,
        "final": snapshot(graph, cfg),
        "history": history(graph, cfg),
        "namespaces": namespaces(graph.checkpointer, cfg),
    }


@differential
def test_subgraph_invoked_inside_a_function_node(ns):
    calls = {}
    sub = ask_subgraph(ns, calls)

    def call(state):
        calls["call"] = calls.get("call", 0) + 1
        out = sub.invoke({"log": ["in"]})
        return {"log": ["call:" + ",".join(out["log"])]}

    g = ns.StateGraph(Log)
    g.add_node("call", call)
    g.add_edge(ns.START, "call")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    first = stream(graph, {"log": []}, cfg, stream_mode="updates", subgraphs=True)
    paused = graph.get_state(cfg, subgraphs=True)
    resumed = stream(graph, ns.Command(resume="r"), cfg, stream_mode="updates", subgraphs=True)
    return {
        "first": first,
        "paused": paused,
        "resumed": resumed,
        "calls": calls,
        "history_task_states": [[t.state for t in s.tasks] for s in graph.get_state_history(cfg)],
    }


@differential
def test_function_node_interrupts_around_a_subgraph(ns):
    calls = {}
    sub = ask_subgraph(ns, calls)

    def wrap(state):
        calls["wrap"] = calls.get("wrap", 0) + 1
        before = ns.interrupt("before?")
        out = sub.invoke({"log": [before]})
        after = ns.interrupt("after?")
        return {"log": out["log"] + [after]}

    g = ns.StateGraph(Log)
    g.add_node("wrap", wrap)
    g.add_edge(ns.START, "wrap")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    # Each answer goes to the one interrupt() waiting for it, in the node
    # or in the subgraph; the finished subgraph is not run again.
    outs = [graph.invoke({"log": []}, cfg)]
    for answer in ("B", "INNER", "A"):
        outs.append(graph.invoke(ns.Command(resume=answer), cfg))
    return {"outs": outs, "calls": calls, "final": snapshot(graph, cfg)}


@differential
def test_subgraph_checkpointer_false_and_true(ns):
    def build(**compile_kwargs):
        calls = {}
        sub = ns.StateGraph(Log)
        sub.add_node("one", counted(calls, "one"))
        sub.add_edge(ns.START, "one")
        sub = sub.compile(**compile_kwargs)

        def call(state):
            return {"log": ["call:" + ",".join(sub.invoke({"log": ["in"]})["log"])]}

        g = ns.StateGraph(Log)
        g.add_node("call", call)
        g.add_node("sub", sub)
        g.add_edge(ns.START, "call")
        g.add_edge("call", "sub")
        return g.compile(checkpointer=ns.InMemorySaver())

    out = {}
    for label, kwargs in (("inherit", {}), ("false", {"checkpointer": False}), ("true", {"checkpointer": True})):
        graph = build(**kwargs)
        cfg = thread()
        runs = [stream(graph, {"log": []}, cfg, stream_mode="updates", subgraphs=True) for _ in range(2)]
        # checkpointer=True: one history per thread under "call"/"sub", so
        # the second run continues the first one's subgraph state.
        out[label] = {"runs": runs, "namespaces": namespaces(graph.checkpointer, cfg)}
    return out


@differential
def test_checkpointer_true_on_a_root_graph_raises(ns):
    g = ns.StateGraph(Log)
    g.add_node("one", lambda s: {"log": ["one"]})
    g.add_edge(ns.START, "one")
    graph = g.compile(checkpointer=True)
    try:
        graph.invoke({"log": []}, thread())
        return "no error"
    except RuntimeError as exc:
        return str(exc)


@differential
def test_static_breakpoint_inside_subgraph(ns):
    calls = {}
    s = ns.StateGraph(Log)
    s.add_node("x", counted(calls, "x"))
    s.add_node("y", counted(calls, "y"))
    s.add_edge(ns.START, "x")
    s.add_edge("x", "y")
    graph = parent_of(ns, s.compile(interrupt_before=["y"]), calls)
    cfg = thread()
    first = stream(graph, {"log": []}, cfg, stream_mode="updates", subgraphs=True)
    paused = graph.get_state(cfg, subgraphs=True)
    return {
        "first": first,
        "paused": snapshot(graph, cfg),
        "sub_next": paused.tasks[0].state.next,
        "resumed": stream(graph, None, cfg, stream_mode="updates", subgraphs=True),
        "calls": calls,
    }


@differential
def test_parent_command_from_subgraph_node(ns):
    def jump(state):
        return ns.Command(graph=ns.Command.PARENT, goto="other", update={"log": ["jump"]})

    s = ns.StateGraph(Log)
    s.add_node("jump", jump)
    s.add_edge(ns.START, "jump")
    g = ns.StateGraph(Log)
    g.add_node("sub", s.compile())
    g.add_node("other", lambda st: {"log": ["other"]})
    g.add_edge(ns.START, "sub")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    return {
        "updates": stream(graph, {"log": []}, cfg, stream_mode="updates", subgraphs=True),
        "state": snapshot(graph, cfg),
    }


@differential
def test_send_to_subgraph_parallel_interrupts_resumed_by_id(ns):
    calls = {}

    def ask(state):
        calls["ask"] = calls.get("ask", 0) + 1
        return {"log": [ns.interrupt("q" + state["log"][-1])]}

    s = ns.StateGraph(Log)
    s.add_node("ask", ask)
    s.add_edge(ns.START, "ask")
    g = ns.StateGraph(Log)
    g.add_node("sub", s.compile())
    g.add_conditional_edges(ns.START, lambda st: [ns.Send("sub", {"log": [str(i)]}) for i in range(2)])
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    first = graph.invoke({"log": []}, cfg)
    state = graph.get_state(cfg, subgraphs=True)
    ids = {i.value: i.id for i in state.interrupts}
    one = graph.invoke(ns.Command(resume={ids["q0"]: "A0"}), cfg)
    two = graph.invoke(ns.Command(resume={ids["q1"]: "A1"}), cfg)
    return {
        "first": Unordered(first["__interrupt__"]),
        "sub_values": sorted(str(t.state.values) for t in state.tasks),
        "one": [i.value for i in one["__interrupt__"]],
        "two": two,
        "calls": calls,
        "final": snapshot(graph, cfg),
    }


@differential
def test_error_inside_subgraph_then_continue(ns):
    calls = {}
    broken = {"on": True}

    def flaky(state):
        calls["flaky"] = calls.get("flaky", 0) + 1
        if broken["on"]:
            raise ValueError("boom")
        return {"log": ["fixed"]}

    s = ns.StateGraph(Log)
    s.add_node("prep", counted(calls, "prep"))
    s.add_node("flaky", flaky)
    s.add_edge(ns.START, "prep")
    s.add_edge("prep", "flaky")
    graph = parent_of(ns, s.compile(), calls)
    cfg = thread()
    try:
        graph.invoke({"log": []}, cfg)
        raised = None
    except ValueError as exc:
        raised = str(exc)
    failed = graph.get_state(cfg, subgraphs=True)
    broken["on"] = False
    return {
        "raised": raised,
        "failed_parent": [(t.name, t.error) for t in failed.tasks],
        "failed_sub": [(t.name, t.error) for t in failed.tasks[0].state.tasks],
        # Continuing re-runs only the failed node inside the subgraph.
        "continued": graph.invoke(None, cfg),
        "calls": calls,
    }


@differential
def test_update_state_of_a_subgraph_then_resume(ns):
    calls = {}
    graph = parent_of(ns, ask_subgraph(ns, calls), calls)
    cfg = thread()
    graph.invoke({"log": []}, cfg)
    sub_config = graph.get_state(cfg, subgraphs=True).tasks[0].state.config
    updated_config = graph.update_state(sub_config, {"log": ["edited"]})
    return {
        "updated_config": updated_config,
        "sub_state": graph.get_state(cfg, subgraphs=True).tasks[0].state,
        "resumed": graph.invoke(ns.Command(resume="r"), cfg),
        "calls": calls,
    }


@differential
def test_custom_and_checkpoint_modes_from_subgraphs(ns):
    def shout(state):
        ns.get_stream_writer()({"inside": "sub"})
        return {"log": ["shout"]}

    s = ns.StateGraph(Log)
    s.add_node("shout", shout)
    s.add_edge(ns.START, "shout")
    g = ns.StateGraph(Log)
    g.add_node("sub", s.compile())
    g.add_edge(ns.START, "sub")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    modes = ["custom", "checkpoints", "tasks"]
    return {
        "with": stream(graph, {"log": []}, thread(), stream_mode=modes, subgraphs=True),
        # Without subgraphs=True a subgraph's custom chunks stay inside.
        "without": stream(graph, {"log": []}, thread(), stream_mode=["custom", "updates"]),
    }


@differential
def test_messages_mode_from_a_subgraph(ns):
    def build():
        model = GenericFakeChatModel(messages=iter([AIMessage(content="hello there", id="ai-1")]))
        s = ns.StateGraph(ns.MessagesState)
        s.add_node("chat", lambda st: {"messages": [model.invoke(st["messages"])]})
        s.add_edge(ns.START, "chat")
        g = ns.StateGraph(ns.MessagesState)
        g.add_node("sub", s.compile())
        g.add_edge(ns.START, "sub")
        return g.compile(checkpointer=ns.InMemorySaver())

    def tokens(subgraphs):
        out = []
        for chunk in build().stream(
            {"messages": [("user", "hi")]}, thread(), stream_mode="messages", subgraphs=subgraphs
        ):
            where, (message, meta) = chunk if subgraphs else ((), chunk)
            out.append((where, message.content, meta["langgraph_node"]))
        return out

    # Tokens from inside a subgraph only with subgraphs=True; without it the
    # subgraph node's finished message is reported once.
    return {"with": tokens(True), "without": tokens(False)}


@differential
async def test_async_subgraph_interrupt_and_resume(ns):
    calls = {}
    graph = parent_of(ns, ask_subgraph(ns, calls), calls)
    cfg = thread()
    first = [c async for c in graph.astream({"log": []}, cfg, stream_mode="updates", subgraphs=True)]
    state = await graph.aget_state(cfg, subgraphs=True)
    again = await graph.ainvoke(ns.Command(resume="async"), cfg)
    return {"first": first, "state": state, "again": again, "calls": calls}
