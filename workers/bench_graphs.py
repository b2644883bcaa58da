"""Graphs the distributed benchmarks run (``bench/distributed.py``); register
them with ``LGDIST_GRAPHS`` (``bench.distributed.GRAPHS`` lists them).

Every node is trivial except ``sleepy_fanout``'s, which sleeps like an I/O
call (``LGDIST_BENCH_SLEEP_SECONDS``, default 0.2), so the timings measure the
runtime, not the work.
"""

from __future__ import annotations

import operator
import os
import time
from typing import Annotated, TypedDict

from lgdist.graph import END, START, StateGraph
from lgdist.types import Send


class ChainState(TypedDict, total=False):
    n: int


def _increment(state: ChainState) -> dict:
    return {"n": state.get("n", 0) + 1}


def build_chain(length: int) -> StateGraph:
    """``length`` nodes in a row: one superstep per node."""
    g = StateGraph(ChainState)
    prev = START
    for i in range(length):
        g.add_node(f"n{i}", _increment)
        g.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    g.add_edge(prev, END)
    return g


chain_20 = build_chain(20).compile()
chain_200 = build_chain(200).compile()


class FanState(TypedDict, total=False):
    hits: Annotated[list, operator.add]


def build_fanout(width: int) -> StateGraph:
    """``src`` → ``width`` parallel nodes → ``join`` (the same shape as
    ``bench/local.py``'s fan-out)."""
    g = StateGraph(FanState)
    g.add_node("src", lambda s: {"hits": []})
    g.add_edge(START, "src")
    names = [f"w{i}" for i in range(width)]
    for name in names:
        g.add_node(name, lambda s: {"hits": [1]})
        g.add_edge("src", name)
    g.add_node("join", lambda s: {"hits": [0]})
    g.add_edge(names, "join")
    g.add_edge("join", END)
    return g


fanout_8 = build_fanout(8).compile()
fanout_32 = build_fanout(32).compile()


class SleepyState(TypedDict, total=False):
    count: int
    done: Annotated[list, operator.add]


def _sleepy_route(state: SleepyState) -> list:
    return [Send("io", {"i": i}) for i in range(state["count"])]


def _io(arg: dict) -> dict:
    time.sleep(float(os.environ.get("LGDIST_BENCH_SLEEP_SECONDS", "0.2")))
    return {"done": [arg["i"]]}


def build_sleepy_fanout() -> StateGraph:
    """``count`` I/O-bound nodes sent in one step (``Send``), then joined."""
    g = StateGraph(SleepyState)
    g.add_node("split", lambda s: {})
    g.add_node("io", _io)
    g.add_node("join", lambda s: {})
    g.add_edge(START, "split")
    g.add_conditional_edges("split", _sleepy_route, ["io"])
    g.add_edge("io", "join")
    g.add_edge("join", END)
    return g


sleepy_fanout = build_sleepy_fanout().compile()


class StepsState(TypedDict, total=False):
    n: int


def _more(state: StepsState) -> str:
    return "step" if state.get("n", 0) < 5 else END


def build_five_steps() -> StateGraph:
    """One node that loops five times: five supersteps per thread."""
    g = StateGraph(StepsState)
    g.add_node("step", _increment)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", _more, ["step", END])
    return g


five_steps = build_five_steps().compile()
