"""``defer=True`` nodes (run once when nothing else is left to run) and node
caching (``cache_policy`` with a cache given at compile time)."""

import operator
from typing import Annotated

from typing_extensions import TypedDict

from .harness import capture, differential, thread
from .observe import history, snapshot, stream


class Log(TypedDict):
    log: Annotated[list, operator.add]


def _logger(name):
    return lambda state: {"log": [name]}


def _summary(state):
    return {"log": ["summary:" + ",".join(state["log"])]}


def build_deferred_after_uneven_branches(ns, checkpointer=None):
    """a fans out to b (then b2) and c; d is deferred: it runs once, after
    both branches, although c reaches it a step before b2 does."""
    g = ns.StateGraph(Log)
    for name in ("a", "b", "b2", "c"):
        g.add_node(name, _logger(name))
    g.add_node("d", _summary, defer=True)
    g.add_edge(ns.START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")
    g.add_edge("b", "b2")
    g.add_edge("b2", "d")
    g.add_edge("c", "d")
    g.add_edge("d", ns.END)
    return g.compile(checkpointer=checkpointer)


def build_deferred_join(ns):
    """A join edge into a deferred node."""
    g = ns.StateGraph(Log)
    for name in ("a", "b", "b2", "c"):
        g.add_node(name, _logger(name))
    g.add_node("d", _summary, defer=True)
    g.add_edge(ns.START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")
    g.add_edge("b", "b2")
    g.add_edge(["b2", "c"], "d")
    return g.compile()


def build_deferred_map_reduce(ns):
    """Send packets of uneven depth, a deferred reducer."""

    class S(TypedDict):
        items: list
        log: Annotated[list, operator.add]

    def work(item):
        if item["n"] > 1:
            return ns.Command(goto=ns.Send("work", {"n": item["n"] - 1}), update={"log": [f"work{item['n']}"]})
        return {"log": [f"work{item['n']}"]}

    g = ns.StateGraph(S)
    g.add_node("work", work)
    g.add_node("reduce", _summary, defer=True)
    g.add_conditional_edges(ns.START, lambda s: [ns.Send("work", {"n": n}) for n in s["items"]], ["work"])
    g.add_edge("work", "reduce")
    return g.compile()


@differential
def test_deferred_node_runs_once_after_uneven_branches(ns):
    graph = build_deferred_after_uneven_branches(ns, ns.InMemorySaver())
    cfg = thread()
    return {
        "invoke": graph.invoke({"log": []}, thread()),
        "updates": stream(graph, {"log": []}, cfg, stream_mode="updates", durability="sync"),
        "state": snapshot(graph, cfg),
        "history": history(graph, cfg),
    }


@differential
def test_deferred_join_and_map_reduce(ns):
    join = build_deferred_join(ns)
    reduce = build_deferred_map_reduce(ns)
    return {
        "join": stream(join, {"log": []}, stream_mode="updates"),
        "reduce": stream(reduce, {"items": [1, 3, 2], "log": []}, stream_mode="updates"),
        "reduce_values": stream(reduce, {"items": [2], "log": []}, stream_mode="values"),
    }


@differential
def test_deferred_node_with_an_interrupt_before_it(ns):
    g = ns.StateGraph(Log)
    g.add_node("a", _logger("a"))
    g.add_node("b", _logger("b"))
    g.add_node("ask", lambda s: {"log": [ns.interrupt("go?")]})
    g.add_node("d", _summary, defer=True)
    g.add_edge(ns.START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "ask")
    g.add_edge("b", "d")
    g.add_edge("ask", "d")
    graph = g.compile(checkpointer=ns.InMemorySaver())
    cfg = thread()
    first = graph.invoke({"log": []}, cfg)
    mid = snapshot(graph, cfg)
    return {"first": first, "mid": mid, "resumed": graph.invoke(ns.Command(resume="yes"), cfg), "end": snapshot(graph, cfg)}


# -- caching ----------------------------------------------------------------------


class Calc(TypedDict):
    x: int
    result: int
    log: Annotated[list, operator.add]


def build_cached_graph(ns, calls, cache, checkpointer=None, ttl=None):
    def expensive(state: Calc):
        calls.append(state["x"])
        return {"result": state["x"] * 10, "log": ["expensive"]}

    def after(state: Calc):
        return {"log": [f"after {state['result']}"]}

    g = ns.StateGraph(Calc)
    g.add_node("expensive", expensive, cache_policy=ns.CachePolicy(ttl=ttl))
    g.add_node("after", after)
    g.add_edge(ns.START, "expensive")
    g.add_edge("expensive", "after")
    return g.compile(checkpointer=checkpointer, cache=cache)


@differential
def test_cached_node_runs_once_per_input(ns):
    calls = []
    graph = build_cached_graph(ns, calls, ns.InMemoryCache(), ttl=120)
    first = stream(graph, {"x": 1, "log": []}, stream_mode="updates")
    second = stream(graph, {"x": 1, "log": []}, stream_mode="updates")
    other = stream(graph, {"x": 2, "log": []}, stream_mode="updates")
    again = graph.invoke({"x": 2, "log": []})
    return {"first": first, "second": second, "other": other, "again": again, "calls": list(calls)}


@differential
def test_cached_node_stream_modes_and_checkpoints(ns):
    calls = []
    graph = build_cached_graph(ns, calls, ns.InMemoryCache(), ns.InMemorySaver())
    graph.invoke({"x": 3, "log": []}, thread())
    cfg = thread()
    chunks = stream(
        graph, {"x": 3, "log": []}, cfg, stream_mode=["updates", "values", "tasks", "debug", "checkpoints"]
    )
    return {"chunks": chunks, "state": snapshot(graph, cfg), "history": history(graph, cfg), "calls": list(calls)}


@differential
async def test_cached_node_async_and_clear_cache(ns):
    calls = []
    graph = build_cached_graph(ns, calls, ns.InMemoryCache())
    first = [c async for c in graph.astream({"x": 4, "log": []}, stream_mode="updates")]
    second = [c async for c in graph.astream({"x": 4, "log": []}, stream_mode="updates")]
    await graph.aclear_cache()
    third = await graph.ainvoke({"x": 4, "log": []})
    graph.clear_cache(["after"])
    fourth = graph.invoke({"x": 4, "log": []})
    graph.clear_cache(["expensive"])
    fifth = graph.invoke({"x": 4, "log": []})
    return {"runs": [first, second, third, fourth, fifth], "calls": list(calls)}


@differential
def test_cache_key_func_send_tasks_and_errors(ns):
    calls = []

    class S(TypedDict):
        items: list
        out: Annotated[list, operator.add]

    def square(item: dict):
        calls.append(item["n"])
        if item["n"] < 0:
            raise ValueError("negative")
        return {"out": [item["n"] ** 2]}

    g = ns.StateGraph(S)
    # The key ignores "tag": items with the same n share a cache entry.
    g.add_node("square", square, cache_policy=ns.CachePolicy(key_func=lambda item: str(item["n"])))
    g.add_conditional_edges(
        ns.START, lambda s: [ns.Send("square", {"n": n, "tag": i}) for i, n in enumerate(s["items"])], ["square"]
    )
    graph = g.compile(cache=ns.InMemoryCache())
    first = graph.invoke({"items": [1, 2], "out": []})
    second = stream(graph, {"items": [2, 1, 3], "out": []}, stream_mode="updates")
    failed = capture(lambda: graph.invoke({"items": [-1], "out": []}))
    failed_again = capture(lambda: graph.invoke({"items": [-1], "out": []}))
    return {"first": first, "second": second, "failed": [failed, failed_again], "calls": list(calls)}


@differential
def test_cache_policy_without_a_cache_and_cache_without_policy(ns):
    calls = []
    no_cache = build_cached_graph(ns, calls, None)
    no_cache.invoke({"x": 5, "log": []})
    no_cache.invoke({"x": 5, "log": []})

    plain_calls = []

    def node(state: Calc):
        plain_calls.append(1)
        return {"result": 1}

    g = ns.StateGraph(Calc)
    g.add_node("node", node)
    g.add_edge(ns.START, "node")
    graph = g.compile(cache=ns.InMemoryCache())
    graph.invoke({"x": 1, "log": []})
    graph.invoke({"x": 1, "log": []})
    return {
        "calls": list(calls),
        "plain_calls": len(plain_calls),
        "clear_without_cache": capture(lambda: no_cache.clear_cache()),
    }
