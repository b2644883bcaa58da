"""A graph with a subgraph node, for ``stream(..., subgraphs=True)`` on the
workers: ``prepare`` -> ``child`` (a compiled graph of two steps that also
writes a custom chunk) -> ``finish``."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from lgdist.config import get_stream_writer
from lgdist.graph import END, START, StateGraph


class TopicError(ValueError):
    """Raised by the child graph for the topic "forbidden": a graph's own
    exception class, which a remote caller can catch as locally."""


class NestedState(TypedDict, total=False):
    topic: str
    log: Annotated[list, operator.add]


def _prepare(state: NestedState) -> dict:
    return {"log": [f"prepare:{state['topic']}"]}


def _draft(state: NestedState) -> dict:
    if state["topic"] == "forbidden":
        raise TopicError(f"topic {state['topic']!r} is not allowed")
    get_stream_writer()({"drafting": state["topic"]})
    return {"log": ["child:draft"]}


def _polish(state: NestedState) -> dict:
    return {"log": ["child:polish"]}


def _finish(state: NestedState) -> dict:
    return {"log": [f"finish:{len(state['log'])}"]}


def build_child() -> StateGraph:
    g = StateGraph(NestedState)
    g.add_node("draft", _draft)
    g.add_node("polish", _polish)
    g.add_edge(START, "draft")
    g.add_edge("draft", "polish")
    g.add_edge("polish", END)
    return g


def build() -> StateGraph:
    g = StateGraph(NestedState)
    g.add_node("prepare", _prepare)
    g.add_node("child", build_child().compile())
    g.add_node("finish", _finish)
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "child")
    g.add_edge("child", "finish")
    g.add_edge("finish", END)
    return g


graph = build().compile()
