"""Config metadata in checkpoint metadata: ``invoke(..., {"metadata": ...,
"tags": ...})``, ``with_config(metadata=...)``, scalar ``configurable``
values, ``update_state`` with metadata, subgraph checkpoints, the
``checkpoints`` stream and history filters."""

import operator
from typing import Annotated

from typing_extensions import TypedDict

from .harness import differential, thread
from .observe import stream


class Log(TypedDict):
    log: Annotated[list, operator.add]


def step_a(state: Log):
    return {"log": ["a"]}


def step_b(state: Log):
    return {"log": ["b"]}


def build_two_steps(ns):
    g = ns.StateGraph(Log)
    g.add_node("a", step_a)
    g.add_node("b", step_b)
    g.add_edge(ns.START, "a")
    g.add_edge("a", "b")
    return g.compile(checkpointer=ns.InMemorySaver())


def build_with_subgraph(ns):
    inner = ns.StateGraph(Log)
    inner.add_node("inner_a", step_a)
    inner.add_edge(ns.START, "inner_a")
    outer = ns.StateGraph(Log)
    outer.add_node("sub", inner.compile())
    outer.add_node("b", step_b)
    outer.add_edge(ns.START, "sub")
    outer.add_edge("sub", "b")
    return outer.compile(checkpointer=ns.InMemorySaver())


def metadata_history(graph, config):
    return [s.metadata for s in graph.get_state_history(config)]


def _config(**extra):
    cfg = thread()
    cfg["configurable"].update(extra)
    return cfg


@differential
def test_config_metadata_and_configurable_scalars_reach_checkpoint_metadata(ns):
    graph = build_two_steps(ns)
    cfg = _config(user="ada", n=3, ratio=0.5, flag=True, obj=object(), listed=[1], __private="x")
    run_cfg = {**cfg, "metadata": {"origin": "test", "num": 1, "nested": {"a": 1}, "nul": "a\u0000b"}, "tags": ["t1"]}
    graph.invoke({"log": []}, run_cfg)
    plain = _config()
    graph.invoke({"log": []}, plain)
    return {
        "state": graph.get_state(cfg).metadata,
        "history": metadata_history(graph, cfg),
        "plain": metadata_history(graph, plain),
        "filtered": len(list(graph.get_state_history(cfg, filter={"origin": "test"}))),
        "filtered_configurable": len(list(graph.get_state_history(cfg, filter={"user": "ada", "source": "loop"}))),
    }


@differential
def test_with_config_metadata_update_state_and_resume(ns):
    graph = build_two_steps(ns)
    bound = graph.with_config(metadata={"wc": 1}, tags=["x"])
    cfg = thread()
    bound.invoke({"log": []}, cfg)
    graph.update_state({**cfg, "metadata": {"um": 1}}, {"log": ["u"]})
    # A later run's own metadata, on the same thread.
    graph.invoke({"log": []}, {**cfg, "metadata": {"second": 2}})
    return {"history": metadata_history(graph, cfg)}


@differential
def test_metadata_in_subgraph_checkpoints_and_the_checkpoints_stream(ns):
    graph = build_with_subgraph(ns)
    cfg = _config(user="ada")
    run_cfg = {**cfg, "metadata": {"origin": "test"}}
    chunks = stream(graph, {"log": []}, run_cfg, stream_mode="checkpoints", subgraphs=True)
    sub_ns = graph.get_state(cfg, subgraphs=False)
    return {
        "checkpoints": [(namespace[:0], chunk["metadata"]) for namespace, chunk in chunks],
        "history": metadata_history(graph, cfg),
        "state": sub_ns.metadata,
    }


def ask(state: Log):
    answer = interrupt_of(state)
    return {"log": [answer]}


_INTERRUPT = {}


def interrupt_of(state):
    return _INTERRUPT["fn"]("question")


def build_interrupting_subgraph(ns):
    inner = ns.StateGraph(Log)
    inner.add_node("ask", ask)
    inner.add_edge(ns.START, "ask")
    outer = ns.StateGraph(Log)
    outer.add_node("a", step_a)
    outer.add_node("sub", inner.compile())
    outer.add_edge(ns.START, "a")
    outer.add_edge("a", "sub")
    return outer.compile(checkpointer=ns.InMemorySaver())


@differential
def test_metadata_of_interrupted_subgraph_and_resume(ns):
    _INTERRUPT["fn"] = ns.interrupt
    graph = build_interrupting_subgraph(ns)
    cfg = _config(user="ada")
    graph.invoke({"log": []}, {**cfg, "metadata": {"first": 1}})
    sub = graph.get_state(cfg, subgraphs=True).tasks[0].state
    sub_history = metadata_history(graph, sub.config)
    graph.invoke(ns.Command(resume="yes"), {**thread_of(cfg), "metadata": {"resumed": True}})
    return {
        "sub_state": sub.metadata,
        "sub_history": sub_history,
        "history": metadata_history(graph, cfg),
    }


def thread_of(cfg):
    return {"configurable": {"thread_id": cfg["configurable"]["thread_id"]}}
