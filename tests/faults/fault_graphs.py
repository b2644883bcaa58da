"""Graphs the fault suite runs on its workers (registered through
``LGDIST_GRAPHS``; the workers find this module on their ``PYTHONPATH``).

Each is deterministic, so a thread that survived a fault can be compared
with a fault-free run of the same graph on the local runtime.
"""

from __future__ import annotations

import operator
import os
import time
from typing import Annotated, TypedDict

from lgdist.graph import END, START, StateGraph
from lgdist.types import RetryPolicy, Send


class TickState(TypedDict, total=False):
    n: int
    until: int
    trail: Annotated[list, operator.add]


def _tick(state: TickState) -> dict:
    """One step of a counter; sleeps ``LGDIST_FAULT_TICK_SECONDS`` so that a
    fault injected mid-run lands in the middle of something."""
    time.sleep(float(os.environ.get("LGDIST_FAULT_TICK_SECONDS", "0")))
    n = state.get("n", 0)
    return {"n": n + 1, "trail": [n]}


def _more(state: TickState) -> str:
    return "tick" if state.get("n", 0) < state.get("until", 5) else END


def build_ticker() -> StateGraph:
    g = StateGraph(TickState)
    g.add_node("tick", _tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", _more, ["tick", END])
    return g


ticker = build_ticker().compile()


def _hang(state: TickState) -> dict:
    """Hangs for ``LGDIST_FAULT_HANG_SECONDS`` (an hour): only a time limit
    stops it. Set to 0 it fails at once, which is what the fault-free
    reference of a node stopped by its time limit looks like."""
    time.sleep(float(os.environ.get("LGDIST_FAULT_HANG_SECONDS", "3600")))
    raise TimeoutError("the hang node was not stopped by a time limit")


def build_hang() -> StateGraph:
    g = StateGraph(TickState)
    g.add_node("hang", _hang)
    g.add_edge(START, "hang")
    g.add_edge("hang", END)
    return g


hang = build_hang().compile()


def _stubborn_hang(state: TickState) -> dict:
    """Hangs like ``_hang`` but swallows the soft time limit's exception and
    keeps hanging: only the hard limit stops it."""
    from celery.exceptions import SoftTimeLimitExceeded

    deadline = time.monotonic() + float(os.environ.get("LGDIST_FAULT_HANG_SECONDS", "3600"))
    while time.monotonic() < deadline:
        try:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        except SoftTimeLimitExceeded:
            continue
    raise TimeoutError("the hang node was not stopped by a time limit")


def build_stubborn_hang() -> StateGraph:
    g = StateGraph(TickState)
    g.add_node("hang", _stubborn_hang)
    g.add_edge(START, "hang")
    g.add_edge("hang", END)
    return g


def build_retried_hang() -> StateGraph:
    """The hanging node under a RetryPolicy that retries any exception: the
    soft time limit is still not retried (a time limit is not transient)."""
    g = StateGraph(TickState)
    g.add_node("hang", _hang, retry_policy=RetryPolicy(retry_on=Exception, max_attempts=5, initial_interval=0.01, jitter=False))
    g.add_edge(START, "hang")
    g.add_edge("hang", END)
    return g


retried_hang = build_retried_hang().compile()
stubborn_hang = build_stubborn_hang().compile()


class FlakyState(TypedDict, total=False):
    key: str
    n: int
    attempts: int


# Attempts per thread key, in this process: RetryPolicy retries a node in
# the process that runs it.
_ATTEMPTS: dict[str, int] = {}
FLAKY_FAILURES = 2


class FlakyServiceError(Exception):
    """What a node calling an unreliable service sees. (Not a
    ConnectionError: lgdist's default ``retry_on`` does not retry those,
    unlike LangGraph's.)"""


def _flaky(state: FlakyState) -> dict:
    key = state["key"]
    _ATTEMPTS[key] = _ATTEMPTS.get(key, 0) + 1
    if _ATTEMPTS[key] <= FLAKY_FAILURES:
        raise FlakyServiceError(f"attempt {_ATTEMPTS[key]} of {key} failed on purpose")
    return {"n": state.get("n", 0) + 1, "attempts": _ATTEMPTS[key]}


def build_flaky() -> StateGraph:
    g = StateGraph(FlakyState)
    g.add_node(
        "flaky",
        _flaky,
        retry_policy=RetryPolicy(max_attempts=FLAKY_FAILURES + 1, initial_interval=0.05, jitter=False),
    )
    g.add_edge(START, "flaky")
    g.add_edge("flaky", END)
    return g


flaky = build_flaky().compile()


def _pausing_tick(state: TickState) -> dict:
    """A tick that, at ``n == 1``, writes its process id to
    ``LGDIST_FAULT_PAUSE_FILE`` and runs for 2 s: long enough for a test to
    freeze its worker mid-node."""
    n = state.get("n", 0)
    if n == 1:
        path = os.environ.get("LGDIST_FAULT_PAUSE_FILE")
        if path:
            with open(path, "w") as fh:
                fh.write(str(os.getpid()))
        time.sleep(2.0)
    else:
        time.sleep(0.2)
    return {"n": n + 1, "trail": [n]}


def build_pausing() -> StateGraph:
    g = StateGraph(TickState)
    g.add_node("tick", _pausing_tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", _more, ["tick", END])
    return g


pausing = build_pausing().compile()


class ChaosState(TypedDict, total=False):
    topic: str
    results: Annotated[list, operator.add]
    summary: str
    decision: str


def _chaos_split(state: ChaosState) -> dict:
    return {}


def _chaos_route(state: ChaosState) -> list:
    from lgdist.types import Send

    return [Send("work", {"topic": state["topic"], "item": i}) for i in range(3)]


def _chaos_work(arg: dict) -> dict:
    """One unit of fan-out work; appends a line per execution to
    ``LGDIST_FAULT_EXECUTIONS`` so a test can count side-effect duplicates."""
    time.sleep(float(os.environ.get("LGDIST_FAULT_TICK_SECONDS", "0")) * 4)
    path = os.environ.get("LGDIST_FAULT_EXECUTIONS")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{arg['topic']} {arg['item']}\n")
    return {"results": [f"{arg['topic']}:{arg['item']}"]}


def _chaos_join(state: ChaosState) -> dict:
    return {"summary": ",".join(sorted(state.get("results", [])))}


def _chaos_ask(state: ChaosState) -> dict:
    from lgdist.types import interrupt

    return {"decision": interrupt({"approve": state["summary"]})}


def build_chaos() -> StateGraph:
    g = StateGraph(ChaosState)
    g.add_node("split", _chaos_split)
    g.add_node("work", _chaos_work)
    g.add_node("join", _chaos_join)
    g.add_node("ask", _chaos_ask)
    g.add_edge(START, "split")
    g.add_conditional_edges("split", _chaos_route, ["work"])
    g.add_edge("work", "join")
    g.add_edge("join", "ask")
    g.add_edge("ask", END)
    return g


chaos = build_chaos().compile()


def _slow_ask(state: ChaosState) -> dict:
    """Works for a second, then asks: a cancel can land while it runs."""
    from lgdist.types import interrupt

    time.sleep(float(os.environ.get("LGDIST_FAULT_TICK_SECONDS", "0")) * 20)
    return {"decision": interrupt({"approve": state.get("topic")})}


def build_slow_ask() -> StateGraph:
    g = StateGraph(ChaosState)
    g.add_node("ask", _slow_ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    return g


slow_ask = build_slow_ask().compile()


class WideState(TypedDict, total=False):
    items: list
    results: Annotated[list, operator.add]


def _split(state: WideState) -> dict:
    return {}


def _spread(state: WideState) -> list:
    return [Send("double", {"item": item}) for item in state.get("items", [])]


def _double(arg: dict) -> dict:
    return {"results": [arg["item"] * 2]}


def _total(state: WideState) -> dict:
    return {"results": [sum(state.get("results", []))]}


def build_wide() -> StateGraph:
    """A one-task step, a wide step (``Send``), a one-task step: the shape
    whose wide step's callback runs the step after it."""
    g = StateGraph(WideState)
    g.add_node("split", _split)
    g.add_node("double", _double)
    g.add_node("total", _total)
    g.add_edge(START, "split")
    g.add_conditional_edges("split", _spread, ["double"])
    g.add_edge("double", "total")
    g.add_edge("total", END)
    return g


wide = build_wide().compile()
