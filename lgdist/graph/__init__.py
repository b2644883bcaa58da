"""Graph builders (same import path as LangGraph's ``langgraph.graph``)."""

from lgdist.constants import END, START
from lgdist.graph.compiled import CompiledGraph, CompiledStateGraph
from lgdist.graph.message import MessagesState, add_messages
from lgdist.graph.message_graph import MessageGraph
from lgdist.graph.state import StateGraph

__all__ = [
    "StateGraph",
    "MessageGraph",
    "MessagesState",
    "CompiledStateGraph",
    "CompiledGraph",
    "add_messages",
    "START",
    "END",
]
