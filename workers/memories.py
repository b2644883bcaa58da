"""A graph that uses the long-term memory store: ``remember`` tasks (one per
fact, fanned out over the workers) put facts under the user's namespace,
then ``recall`` finds the ones closest to the question by semantic search.

Register it with ``LGDIST_GRAPHS=memories=workers.memories:graph`` and give
the workers the index with ``LGDIST_STORE_INDEX=workers.memories:STORE_INDEX``
(an offline, deterministic embedding: no model or network needed)."""

from __future__ import annotations

import operator
import os
import time
from typing import Annotated, TypedDict

from lgdist.config import get_store
from lgdist.graph import END, START, StateGraph
from lgdist.runtime import Runtime
from lgdist.store.base import BaseStore
from lgdist.testing import WordHashEmbeddings
from lgdist.types import Send

STORE_INDEX = {"dims": 1024, "embed": WordHashEmbeddings(1024), "fields": ["text"]}


class MemoryState(TypedDict, total=False):
    user: str
    facts: list
    question: str
    recalled: list
    namespaces: list
    workers: Annotated[list, operator.add]


def _fan_out(state: MemoryState) -> list:
    facts = state.get("facts") or []
    if not facts:
        return [Send("recall", state)]
    return [Send("remember", {"user": state["user"], "fact": fact, "i": i}) for i, fact in enumerate(facts)]


def _remember(arg: dict, *, store: BaseStore) -> dict:
    store.put(("memories", arg["user"]), f"fact-{arg['i']}", {"text": arg["fact"], "by": os.getpid()})
    time.sleep(float(os.environ.get("LGDIST_EXAMPLE_WORK_SECONDS", "0")))
    return {"workers": [os.getpid()]}


def _recall(state: MemoryState, runtime: Runtime) -> dict:
    found = get_store().search(("memories", state["user"]), query=state.get("question") or "", limit=3)
    namespaces = runtime.store.list_namespaces(prefix=("memories",))
    return {"recalled": [item.value["text"] for item in found], "namespaces": [list(ns) for ns in namespaces]}


def build() -> StateGraph:
    g = StateGraph(MemoryState)
    g.add_node("remember", _remember)
    g.add_node("recall", _recall)
    g.add_conditional_edges(START, _fan_out, ["remember", "recall"])
    g.add_edge("remember", "recall")
    g.add_edge("recall", END)
    return g


graph = build().compile()
