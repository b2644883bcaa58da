"""A graph with a ``context_schema``: its nodes and router read
``runtime.context`` (the run's ``context=...``, coerced to a dataclass)."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, TypedDict

from lgdist.graph import END, START, StateGraph
from lgdist.runtime import Runtime, get_runtime


@dataclass
class Caller:
    user: str
    lang: str = "en"


class GreetState(TypedDict, total=False):
    log: Annotated[list, operator.add]


def _greet(state: GreetState, runtime: Runtime[Caller]) -> dict:
    return {"log": [f"hello {runtime.context.user} ({type(runtime.context).__name__})"]}


def _route(state: GreetState, runtime: Runtime[Caller]) -> str:
    return "translate" if runtime.context.lang != "en" else END


def _translate(state: GreetState) -> dict:
    return {"log": [f"in {get_runtime().context.lang}"]}


def build() -> StateGraph:
    g = StateGraph(GreetState, context_schema=Caller)
    g.add_node("greet", _greet)
    g.add_node("translate", _translate)
    g.add_edge(START, "greet")
    g.add_conditional_edges("greet", _route, ["translate", END])
    g.add_edge("translate", END)
    return g


graph = build().compile()
