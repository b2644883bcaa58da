"""Small graphs used by the test suite and the benchmarks (register them with
``LGDIST_GRAPHS``)."""

from __future__ import annotations

import operator
import os
import time
from typing import Annotated, TypedDict

from lgdist.cache.memory import InMemoryCache
from lgdist.config import get_stream_writer
from lgdist.graph import END, START, StateGraph
from lgdist.types import CachePolicy, Send, interrupt


class FanState(TypedDict, total=False):
    items: list
    results: Annotated[list, operator.add]
    workers: Annotated[list, operator.add]


def _split(state: FanState) -> dict:
    return {}


def _route(state: FanState) -> list:
    return [Send("work", {"item": item}) for item in state.get("items", [])]


def _work(arg: dict) -> dict:
    delay = float(os.environ.get("LGDIST_EXAMPLE_WORK_SECONDS", "0.2"))
    time.sleep(delay)
    return {"results": [arg["item"] * 2], "workers": [os.getpid()]}


def _join(state: FanState) -> dict:
    return {"results": [sum(state.get("results", []))]}


def build_fanout() -> StateGraph:
    g = StateGraph(FanState)
    g.add_node("split", _split)
    g.add_node("work", _work)
    g.add_node("join", _join)
    g.add_edge(START, "split")
    g.add_conditional_edges("split", _route, ["work"])
    g.add_edge("work", "join")
    g.add_edge("join", END)
    return g


fanout = build_fanout().compile()


class ApprovalState(TypedDict, total=False):
    request: str
    decision: str
    log: Annotated[list, operator.add]


def _ask(state: ApprovalState) -> dict:
    answer = interrupt({"question": f"approve {state['request']}?"})
    return {"decision": answer, "log": ["asked"]}


def _act(state: ApprovalState) -> dict:
    return {"log": [f"acted:{state['decision']}"]}


def build_approval() -> StateGraph:
    g = StateGraph(ApprovalState)
    g.add_node("ask", _ask)
    g.add_node("act", _act)
    g.add_edge(START, "ask")
    g.add_edge("ask", "act")
    g.add_edge("act", END)
    return g


approval = build_approval().compile()


class CounterState(TypedDict, total=False):
    n: int
    trail: Annotated[list, operator.add]


def _step(state: CounterState) -> dict:
    if os.environ.get("LGDIST_EXAMPLE_SLOW_NODE") == "1" and state.get("n", 0) == 2:
        time.sleep(float(os.environ.get("LGDIST_EXAMPLE_SLOW_SECONDS", "3")))
    return {"n": state.get("n", 0) + 1, "trail": [state.get("n", 0)]}


def _more(state: CounterState) -> str:
    return "step" if state.get("n", 0) < int(os.environ.get("LGDIST_EXAMPLE_STEPS", "5")) else END


def build_counter() -> StateGraph:
    g = StateGraph(CounterState)
    g.add_node("step", _step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", _more, ["step", END])
    return g


counter = build_counter().compile()


def _boom(state: CounterState) -> dict:
    raise ValueError("the node failed on purpose")


def build_failing() -> StateGraph:
    g = StateGraph(CounterState)
    g.add_node("boom", _boom)
    g.add_edge(START, "boom")
    return g


failing = build_failing().compile()


def _slow_step(state: CounterState) -> dict:
    """A counting step; the one that sees ``n == LGDIST_EXAMPLE_SLOW_AT``
    first writes the pid running it to ``LGDIST_EXAMPLE_PID_FILE`` (so a test
    can kill that process mid-node), then sleeps
    ``LGDIST_EXAMPLE_SLOW_SECONDS``."""
    n = state.get("n", 0)
    if n == int(os.environ.get("LGDIST_EXAMPLE_SLOW_AT", "2")):
        pid_file = os.environ.get("LGDIST_EXAMPLE_PID_FILE")
        if pid_file:
            # Written whole then renamed, so a reader never sees half a pid.
            tmp = f"{pid_file}.{os.getpid()}.tmp"
            with open(tmp, "w") as fh:
                fh.write(str(os.getpid()))
            os.replace(tmp, pid_file)
        time.sleep(float(os.environ.get("LGDIST_EXAMPLE_SLOW_SECONDS", "3")))
    return {"n": n + 1, "trail": [n]}


def build_slow() -> StateGraph:
    g = StateGraph(CounterState)
    g.add_node("step", _slow_step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", _more, ["step", END])
    return g


slow = build_slow().compile()


class QuestionIn(TypedDict):
    question: str


class AnswerOut(TypedDict):
    answer: str


class QAState(TypedDict, total=False):
    question: str
    draft: str
    answer: str


def _draft(state: QAState) -> dict:
    return {"draft": state["question"].upper()}


def _answer(state: QAState) -> dict:
    return {"answer": f"{state['draft']}!"}


def build_schemas() -> StateGraph:
    """Input and output schemas narrower than the state: streams show every
    state key, ``invoke`` returns only the output schema's."""
    g = StateGraph(QAState, input_schema=QuestionIn, output_schema=AnswerOut)
    g.add_node("draft", _draft)
    g.add_node("answer", _answer)
    g.add_edge(START, "draft")
    g.add_edge("draft", "answer")
    g.add_edge("answer", END)
    return g


schemas = build_schemas().compile()


def _report(state: CounterState) -> dict:
    write = get_stream_writer()
    for i in range(3):
        write({"progress": i, "of": state.get("n", 0)})
    return {"n": state.get("n", 0) + 1, "trail": [state.get("n", 0)]}


def build_writer() -> StateGraph:
    """Two nodes that stream ``custom`` chunks with ``get_stream_writer``."""
    g = StateGraph(CounterState)
    g.add_node("first", _report)
    g.add_node("second", _report)
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    g.add_edge("second", END)
    return g


writer = build_writer().compile()


def _crash(state: CounterState) -> dict:
    """Kills the process running it (a poison message), when allowed by
    ``LGDIST_EXAMPLE_ALLOW_CRASH=1`` so that importing this module elsewhere
    is harmless."""
    if os.environ.get("LGDIST_EXAMPLE_ALLOW_CRASH") == "1":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    return {"n": state.get("n", 0) + 1}


def build_poison() -> StateGraph:
    g = StateGraph(CounterState)
    g.add_node("crash", _crash)
    g.add_edge(START, "crash")
    g.add_edge("crash", END)
    return g


poison = build_poison().compile()


def _over_the_slice_budget(state: CounterState) -> dict:
    """Runs past a slice's node time budget (LGDIST_INLINE_MS, 50 ms): the
    worker running it sends the next step to the queue."""
    time.sleep(0.1)
    return {"n": state.get("n", 0) + 1}


def _count(state: CounterState) -> dict:
    return {"n": state.get("n", 0) + 1}


def build_poison_later() -> StateGraph:
    """A poison node that runs inline after another node in a ``run_node``
    task (a slice that does not begin the run): ``lgdist.start`` runs
    ``long`` and sends ``count``, whose task runs ``crash`` after it."""
    g = StateGraph(CounterState)
    g.add_node("long", _over_the_slice_budget)
    g.add_node("count", _count)
    g.add_node("crash", _crash)
    g.add_edge(START, "long")
    g.add_edge("long", "count")
    g.add_edge("count", "crash")
    g.add_edge("crash", END)
    return g


poison_later = build_poison_later().compile()


class LogState(TypedDict, total=False):
    log: Annotated[list, operator.add]
    pids: Annotated[list, operator.add]


def _log_node(name: str):
    return lambda state: {"log": [name]}


def _summarize(state: LogState) -> dict:
    return {"log": ["summary:" + ",".join(state.get("log", []))]}


def build_deferred() -> StateGraph:
    """``a`` fans out to ``b`` (then ``b2``) and ``c``; the deferred ``d``
    runs once, after both branches."""
    g = StateGraph(LogState)
    for name in ("a", "b", "b2", "c"):
        g.add_node(name, _log_node(name))
    g.add_node("d", _summarize, defer=True)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")
    g.add_edge("b", "b2")
    g.add_edge("b2", "d")
    g.add_edge("c", "d")
    g.add_edge("d", END)
    return g


deferred = build_deferred().compile()


def _expensive(state: LogState) -> dict:
    return {"log": [f"expensive:{len(state.get('log', []))}"], "pids": [os.getpid()]}


def build_cached() -> StateGraph:
    """A cached node followed by a plain one (compile with a cache)."""
    g = StateGraph(LogState)
    g.add_node("expensive", _expensive, cache_policy=CachePolicy(ttl=600))
    g.add_node("after", _log_node("after"))
    g.add_edge(START, "expensive")
    g.add_edge("expensive", "after")
    g.add_edge("after", END)
    return g


def _compile_cached():
    return build_cached().compile(cache=InMemoryCache())


cached = _compile_cached()


class MixedFanState(TypedDict, total=False):
    items: list
    results: Annotated[list, operator.add]


def _mixed_route(state: MixedFanState) -> list:
    return [Send("mixed_work", {"item": item}) for item in state.get("items", [])]


def _mixed_work(arg: dict) -> dict:
    """A wide step's task: ``ask`` interrupts, ``boom`` raises, ``late``
    finishes after a second; anything else at once."""
    item = arg["item"]
    if item == "ask":
        return {"results": [f"ask={interrupt('ask?')}"]}
    if item == "boom":
        raise RuntimeError("boom")
    if item == "late":
        time.sleep(1.0)
    return {"results": [item]}


def build_mixed_fanout() -> StateGraph:
    """A fan-out whose tasks may interrupt or fail beside tasks that finish."""
    g = StateGraph(MixedFanState)
    g.add_node("split", _split)
    g.add_node("mixed_work", _mixed_work)
    g.add_node("join", lambda state: {"results": ["joined"]})
    g.add_edge(START, "split")
    g.add_conditional_edges("split", _mixed_route, ["mixed_work"])
    g.add_edge("mixed_work", "join")
    g.add_edge("join", END)
    return g


mixed_fanout = build_mixed_fanout().compile()
