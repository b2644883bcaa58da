"""``durability`` on invoke/stream: how often a checkpoint is stored, as
LangGraph 1.x does it. "sync" and "async" store every step (the history is
the same); "exit" stores one checkpoint when the run stops — at the end, at
an interrupt (with the interrupt's pending write) or at an error (with the
task's error) — whose parent is the thread's last stored checkpoint."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest

from tests.differential.harness import differential, thread
from tests.differential.observe import history, snapshot


class S(TypedDict):
    n: int
    log: Annotated[list, operator.add]


def _chain(ns):
    g = ns.StateGraph(S)
    for name in ("a", "b", "c"):
        g.add_node(name, lambda s, name=name: {"n": s["n"] + 1, "log": [name]})
    g.add_edge(ns.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", ns.END)
    return g.compile(checkpointer=ns.InMemorySaver())


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_history_per_durability(durability):
    @differential
    def scenario(ns):
        graph = _chain(ns)
        cfg = thread()
        first = graph.invoke({"n": 0, "log": []}, cfg, durability=durability)
        chunks = list(graph.stream({"n": 10, "log": []}, cfg, durability=durability))
        return {"first": first, "chunks": chunks, "state": snapshot(graph, cfg), "history": history(graph, cfg)}

    scenario()


@differential
def test_exit_durability_stores_the_interrupt_and_resumes_from_it(ns):
    def ask(state: S):
        answer = ns.interrupt("approve?")
        return {"n": state["n"] + 100, "log": [answer]}

    g = ns.StateGraph(S)
    g.add_node("a", lambda s: {"n": s["n"] + 1, "log": ["a"]})
    g.add_node("ask", ask)
    g.add_node("b", lambda s: {"n": s["n"] + 1, "log": ["b"]})
    g.add_edge(ns.START, "a")
    g.add_edge("a", "ask")
    g.add_edge("ask", "b")
    g.add_edge("b", ns.END)
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    stopped = graph.invoke({"n": 0, "log": []}, cfg, durability="exit")
    at_interrupt = {"state": snapshot(graph, cfg), "history": history(graph, cfg)}
    done = graph.invoke(ns.Command(resume="yes"), cfg, durability="exit")
    return {"stopped": stopped, "at_interrupt": at_interrupt, "done": done, "history": history(graph, cfg)}


@differential
def test_exit_durability_stores_the_failed_step_with_its_error(ns):
    def boom(state: S):
        raise ValueError("boom")

    g = ns.StateGraph(S)
    g.add_node("a", lambda s: {"n": s["n"] + 1, "log": ["a"]})
    g.add_node("boom", boom)
    g.add_edge(ns.START, "a")
    g.add_edge("a", "boom")
    g.add_edge("boom", ns.END)
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    try:
        graph.invoke({"n": 0, "log": []}, cfg, durability="exit")
        error = None
    except ValueError as exc:
        error = str(exc)
    return {"error": error, "state": snapshot(graph, cfg), "history": history(graph, cfg)}
