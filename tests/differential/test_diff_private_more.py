"""More private-channel shapes: pydantic and dataclass node inputs, a
private key with a reducer, private keys read by a router, and a node whose
hint is a plain annotated class."""

import dataclasses
import operator
from typing import Annotated

import pydantic
from typing_extensions import TypedDict

from .harness import capture, differential, thread
from .observe import snapshot, stream


class PState(pydantic.BaseModel):
    question: str
    answer: str = ""


class PrivateNotes(pydantic.BaseModel):
    notes: list = []
    question: str = ""


def take_notes(state: PState):
    return {"notes": [state.question, "noted"]}


def use_notes(state: PrivateNotes):
    return {"answer": f"{type(state).__name__}: {state.notes}"}


def build_pydantic_private(ns):
    g = ns.StateGraph(PState)
    g.add_node("take_notes", take_notes)
    g.add_node("use_notes", use_notes)
    g.add_edge(ns.START, "take_notes")
    g.add_edge("take_notes", "use_notes")
    return g.compile(checkpointer=ns.InMemorySaver())


@differential
def test_pydantic_private_state(ns):
    graph = build_pydantic_private(ns)
    cfg = thread()
    return {
        "invoke": graph.invoke({"question": "q"}, cfg),
        "stream": stream(graph, {"question": "q2"}, thread(), stream_mode=["updates", "values"]),
        "state": snapshot(graph, cfg),
    }


class Public(TypedDict):
    log: Annotated[list, operator.add]


class Tally(TypedDict):
    tally: Annotated[int, operator.add]
    log: Annotated[list, operator.add]


@dataclasses.dataclass
class DataclassPrivate:
    tally: int = 0


def count_a(state: Public):
    return {"tally": 1, "log": ["a"]}


def count_b(state: Public):
    return {"tally": 2, "log": ["b"]}


def read_tally(state: Tally):
    return {"log": [f"tally {state['tally']}"]}


def read_dataclass(state: DataclassPrivate):
    return {"log": [f"{type(state).__name__} {state.tally}"]}


def route_on_tally(state: Tally):
    return "read_dataclass" if state["tally"] > 2 else "__end__"


class Plain:
    tally: int


def read_plain(state: Plain):
    return {"log": [f"plain {sorted(state)}"]}


def build_reducer_private(ns):
    g = ns.StateGraph(Public)
    g.add_node("count_a", count_a)
    g.add_node("count_b", count_b)
    g.add_node("read_tally", read_tally)
    g.add_node("read_dataclass", read_dataclass)
    g.add_node("read_plain", read_plain)
    g.add_edge(ns.START, "count_a")
    g.add_edge(ns.START, "count_b")
    g.add_edge(["count_a", "count_b"], "read_tally")
    g.add_conditional_edges("read_tally", route_on_tally, ["read_dataclass", ns.END])
    g.add_edge("read_dataclass", "read_plain")
    return g.compile(checkpointer=ns.InMemorySaver())


@differential
def test_private_key_with_a_reducer_read_by_nodes_and_a_router(ns):
    graph = build_reducer_private(ns)
    cfg = thread()
    return {
        "invoke": capture(lambda: graph.invoke({"log": []}, cfg)),
        "state": snapshot(graph, cfg),
    }
