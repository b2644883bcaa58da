"""Prebuilt graph pieces, importable as from ``langgraph.prebuilt``:
``ToolNode``, ``tools_condition``, ``InjectedState``."""

from lgdist.prebuilt.tool_node import InjectedState, ToolInvocationError, ToolNode
from lgdist.prebuilt.tools_condition import tools_condition

__all__ = ["InjectedState", "ToolInvocationError", "ToolNode", "tools_condition"]
