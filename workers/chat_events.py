"""A two-node chat graph for ``astream_events`` through ``RemoteGraph``:
a plain node, then a node that calls a (scripted, offline) chat model with
its config, so the model's tokens stream in ``messages`` mode."""

from typing import Annotated

from typing_extensions import TypedDict

from lgdist.graph import START, StateGraph
from lgdist.graph.message import add_messages
from lgdist.testing import ScriptedChatModel

model = ScriptedChatModel(responses=["hello there friend"], cycle=True)


class Chat(TypedDict):
    messages: Annotated[list, add_messages]
    note: str


def prepare(state: Chat) -> dict:
    return {"note": "prepared"}


def call_model(state: Chat, config) -> dict:
    return {"messages": [model.invoke(state["messages"], config)]}


def build() -> StateGraph:
    g = StateGraph(Chat)
    g.add_node("prepare", prepare)
    g.add_node("call_model", call_model)
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "call_model")
    return g


graph = build().compile()
