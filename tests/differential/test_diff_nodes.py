"""What a node may be: generator and async-generator functions, and
async-only nodes run through the sync API.

The graphs are built by module-level functions of ``ns`` from module-level
node functions, so the same graphs can be registered on remote workers."""

import asyncio
import operator
import re
from typing import Annotated

from typing_extensions import TypedDict

from .harness import Unordered, acapture, capture, differential, thread
from .observe import history, snapshot, stream


class Log(TypedDict):
    log: Annotated[list, operator.add]


def generator_node(state: Log):
    yield {"log": ["first"]}
    yield {"log": ["second"]}


def generator_with_config(state: Log, config):
    yield {"log": [config["metadata"]["langgraph_node"]]}


async def async_generator_node(state: Log):
    yield {"log": ["async first"]}
    yield {"log": ["async second"]}


def after(state: Log):
    return {"log": [f"after saw {len(state['log'])}"]}


def build_generator_graph(ns):
    g = ns.StateGraph(Log)
    g.add_node("gen", generator_node)
    g.add_node("gen_config", generator_with_config)
    g.add_node("after", after)
    g.add_edge(ns.START, "gen")
    g.add_edge("gen", "gen_config")
    g.add_edge("gen_config", "after")
    return g.compile(checkpointer=ns.InMemorySaver())


def build_async_generator_graph(ns):
    g = ns.StateGraph(Log)
    g.add_node("agen", async_generator_node)
    g.add_node("after", after)
    g.add_edge(ns.START, "agen")
    g.add_edge("agen", "after")
    return g.compile(checkpointer=ns.InMemorySaver())


@differential
def test_generator_nodes_return_their_last_chunk(ns):
    graph = build_generator_graph(ns)
    cfg = thread()
    return {
        "invoke": graph.invoke({"log": []}, cfg),
        "stream": stream(graph, {"log": []}, thread(), stream_mode=["updates", "values"]),
        "ainvoke": asyncio.run(graph.ainvoke({"log": []}, thread())),
        "state": snapshot(graph, cfg),
        "history": history(graph, cfg),
    }


@differential
def test_async_generator_nodes_return_their_last_chunk(ns):
    graph = build_async_generator_graph(ns)
    cfg = thread()

    async def run():
        chunks = [c async for c in graph.astream({"log": []}, thread(), stream_mode=["updates", "values"])]
        return {"ainvoke": await graph.ainvoke({"log": []}, cfg), "astream": chunks}

    out = asyncio.run(run())
    out["state"] = snapshot(graph, cfg)
    # Sync invoke of an async generator: langchain-core's own TypeError.
    out["sync_invoke"] = capture(lambda: graph.invoke({"log": []}, thread()))
    return out


async def async_only_a(state: Log):
    return {"log": ["a"]}


async def async_only_b(state: Log):
    return {"log": ["b"]}


def sync_start(state: Log):
    return {"log": ["sync"]}


def build_async_only_graph(ns, *, parallel: bool):
    g = ns.StateGraph(Log)
    g.add_node("a", async_only_a)
    g.add_edge(ns.START, "a")
    if parallel:
        g.add_node("b", async_only_b)
        g.add_edge(ns.START, "b")
    return g.compile(checkpointer=ns.InMemorySaver())


def build_sync_then_async_graph(ns):
    g = ns.StateGraph(Log)
    g.add_node("sync_start", sync_start)
    g.add_node("a", async_only_a)
    g.add_edge(ns.START, "sync_start")
    g.add_edge("sync_start", "a")
    return g.compile(checkpointer=ns.InMemorySaver())


def _any_node(outcome: dict) -> dict:
    """Which of two parallel async nodes fails first is a race in both
    libraries: the message names either."""
    if "message" in outcome:
        outcome = {**outcome, "message": re.sub(r'provided to "[ab]"', 'provided to "<a|b>"', outcome["message"])}
    return outcome


@differential
def test_sync_invoke_of_async_only_nodes_raises_type_error_every_time(ns):
    single = build_async_only_graph(ns, parallel=False)
    parallel = build_async_only_graph(ns, parallel=True)
    mixed = build_sync_then_async_graph(ns)
    cfg = thread()
    out = {
        "single": [capture(lambda: single.invoke({"log": []}, thread())) for _ in range(5)],
        "parallel": [_any_node(capture(lambda: parallel.invoke({"log": []}, thread()))) for _ in range(10)],
        "stream": capture(lambda: stream(single, {"log": []}, thread())),
        "mixed": capture(lambda: mixed.invoke({"log": []}, cfg)),
        "mixed_state": snapshot(mixed, cfg),
        # The async API runs them.
        "ainvoke": asyncio.run(acapture(parallel.ainvoke({"log": []}, thread()))),
    }
    return out


async def async_router(state: Log) -> str:
    return "after" if len(state["log"]) < 2 else ns_end()


def ns_end():
    return "__end__"


async def async_entry(state: Log):
    return ["sync_start", "a"]


def build_async_routers(ns):
    g = ns.StateGraph(Log)
    g.add_node("sync_start", sync_start)
    g.add_node("a", async_only_a)
    g.add_node("after", after)
    g.add_conditional_edges(ns.START, async_entry, ["sync_start", "a"])
    g.add_conditional_edges("sync_start", async_router, ["after", ns.END])
    g.add_edge("a", ns.END)
    g.add_edge("after", ns.END)
    return g.compile(checkpointer=ns.InMemorySaver())


@differential
def test_async_routers_run_in_async_runs_and_fail_sync_runs(ns):
    graph = build_async_routers(ns)
    cfg = thread()

    async def run():
        chunks = [c async for c in graph.astream({"log": []}, thread(), stream_mode="updates")]
        return {"ainvoke": await graph.ainvoke({"log": []}, cfg), "astream": Unordered(chunks)}

    out = asyncio.run(run())
    out["history"] = history(graph, cfg)
    out["sync"] = capture(lambda: graph.invoke({"log": []}, thread()))
    return out
