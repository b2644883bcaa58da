"""Graphs of the differential scenarios, built at module level so workers can
register them: the remote parity suite (tests/distributed/test_remote_parity.py)
runs each through ``RemoteGraph`` and compares it with the same graph on the
local runtime. Each ``build_*`` returns the uncompiled graph; the module-level
names are what ``LGDIST_GRAPHS`` registers."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Optional, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, RemoveMessage
from pydantic import BaseModel

from lgdist.graph import END, START, MessagesState, StateGraph, add_messages
from lgdist.types import Command, Send, interrupt


class Log(TypedDict, total=False):
    log: Annotated[list, operator.add]


def _logger(name: str):
    def node(state: dict) -> dict:
        return {"log": [name]}

    node.__name__ = f"log_{name}"
    return node


# -- fan-out and join: START -> a, b; b -> b2; [a, b2] -> c ------------------------
def build_join() -> StateGraph:
    g = StateGraph(Log)
    for name in ("a", "b", "b2", "c"):
        g.add_node(name, _logger(name))
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge("b", "b2")
    g.add_edge(["a", "b2"], "c")
    g.add_edge("c", END)
    return g


# -- Send map-reduce ---------------------------------------------------------------
class Jokes(TypedDict, total=False):
    subjects: list
    jokes: Annotated[list, operator.add]
    best: str


def _fan_jokes(state: Jokes) -> list:
    return [Send("make_joke", {"subject": s}) for s in state["subjects"]]


def _make_joke(state: dict) -> dict:
    return {"jokes": [f"joke about {state['subject']}"]}


def _pick(state: Jokes) -> dict:
    return {"best": sorted(state["jokes"])[0]}


def build_map_reduce() -> StateGraph:
    g = StateGraph(Jokes)
    g.add_node("make_joke", _make_joke)
    g.add_node("pick", _pick)
    g.add_conditional_edges(START, _fan_jokes, ["make_joke"])
    g.add_edge("make_joke", "pick")
    g.add_edge("pick", END)
    return g


# -- Command(goto=..., update=...) from nodes --------------------------------------
class Trail(TypedDict, total=False):
    n: int
    trail: Annotated[list, operator.add]


def _decide(state: Trail) -> Command:
    target = "even" if state["n"] % 2 == 0 else "odd"
    return Command(update={"trail": ["decide"], "n": state["n"] + 100}, goto=target)


def _even(state: Trail) -> Command:
    return Command(update={"trail": ["even"]}, goto=END)


def _odd(state: Trail) -> dict:
    return {"trail": ["odd"]}


def build_command_goto() -> StateGraph:
    g = StateGraph(Trail)
    g.add_node("decide", _decide)
    g.add_node("even", _even)
    g.add_node("odd", _odd)
    g.add_edge(START, "decide")
    return g


# -- dataclass and pydantic state (values cross the wire as tagged JSON) ----------
@dataclass
class Order:
    item: str
    qty: int = 1
    notes: Annotated[list, operator.add] = field(default_factory=list)


def _price(state: Order) -> dict:
    return {"qty": state.qty * 2, "notes": [f"priced {state.item}"]}


def _ship(state: Order) -> dict:
    return {"notes": [f"shipped {state.qty}"]}


def build_dataclass_state() -> StateGraph:
    g = StateGraph(Order)
    g.add_node("price", _price)
    g.add_node("ship", _ship)
    g.add_edge(START, "price")
    g.add_edge("price", "ship")
    g.add_edge("ship", END)
    return g


class Ticket(BaseModel):
    title: str
    priority: int = 0
    history: Annotated[list, operator.add] = []
    owner: Optional[str] = None


def _triage(state: Ticket) -> dict:
    return {"priority": len(state.title), "history": ["triaged"]}


def _assign(state: Ticket) -> dict:
    return {"owner": "ada" if state.priority > 3 else "bob", "history": ["assigned"]}


def build_pydantic_state() -> StateGraph:
    g = StateGraph(Ticket)
    g.add_node("triage", _triage)
    g.add_node("assign", _assign)
    g.add_edge(START, "triage")
    g.add_edge("triage", "assign")
    g.add_edge("assign", END)
    return g


# -- messages with add_messages and RemoveMessage ----------------------------------
class Chat(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]


def _reply(state: MessagesState) -> dict:
    return {"messages": [AIMessage(content=f"echo: {state['messages'][-1].content}", id="reply-1")]}


def _forget_first(state: MessagesState) -> dict:
    return {"messages": [RemoveMessage(id=state["messages"][0].id)]}


def build_messages() -> StateGraph:
    g = StateGraph(MessagesState)
    g.add_node("reply", _reply)
    g.add_node("forget_first", _forget_first)
    g.add_edge(START, "reply")
    g.add_edge("reply", "forget_first")
    g.add_edge("forget_first", END)
    return g


# -- an interrupt inside a subgraph, then Command(resume=...) ----------------------
def _ask(state: Log) -> dict:
    return {"log": [f"ask={interrupt('ask?')}"]}


def build_asking_child() -> StateGraph:
    g = StateGraph(Log)
    g.add_node("prep", _logger("prep"))
    g.add_node("ask", _ask)
    g.add_edge(START, "prep")
    g.add_edge("prep", "ask")
    g.add_edge("ask", END)
    return g


def build_subgraph_interrupt() -> StateGraph:
    g = StateGraph(Log)
    g.add_node("before", _logger("before"))
    g.add_node("child", build_asking_child().compile())
    g.add_node("after", _logger("after"))
    g.add_edge(START, "before")
    g.add_edge("before", "child")
    g.add_edge("child", "after")
    g.add_edge("after", END)
    return g


# -- two interrupts in one node, answered one at a time ----------------------------
def _two_questions(state: Log) -> dict:
    first = interrupt("first?")
    second = interrupt("second?")
    return {"log": [f"{first}+{second}"]}


def build_two_interrupts() -> StateGraph:
    g = StateGraph(Log)
    g.add_node("ask", _two_questions)
    g.add_node("done", _logger("done"))
    g.add_edge(START, "ask")
    g.add_edge("ask", "done")
    g.add_edge("done", END)
    return g


# -- a static breakpoint after a node (interrupt_after at compile) -----------------
def build_breakpoint_after() -> StateGraph:
    g = StateGraph(Log)
    g.add_node("one", _logger("one"))
    g.add_node("two", _logger("two"))
    g.add_edge(START, "one")
    g.add_edge("one", "two")
    g.add_edge("two", END)
    return g


BREAKPOINT_AFTER = {"interrupt_after": ["one"]}

join = build_join().compile()
map_reduce = build_map_reduce().compile()
command_goto = build_command_goto().compile()
dataclass_state = build_dataclass_state().compile()
pydantic_state = build_pydantic_state().compile()
messages = build_messages().compile()
subgraph_interrupt = build_subgraph_interrupt().compile()
two_interrupts = build_two_interrupts().compile()
breakpoint_after = build_breakpoint_after().compile(**BREAKPOINT_AFTER)
