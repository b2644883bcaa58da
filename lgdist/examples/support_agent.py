"""The seed program's support agent: a chat model bound to a search tool, a
tool node, and a breakpoint before the tool runs.

Uses lgdist's offline scripted model and fake search tool, so it runs with no
network and no API key. Swap in a real chat model (e.g. ``ChatAnthropic``)
to talk to a provider; nothing else changes.
"""

from lgdist.graph import END, MessageGraph
from lgdist.prebuilt import ToolNode
from lgdist.testing import ScriptedChatModel, fake_search

tools = [fake_search]
model = ScriptedChatModel().bind_tools(tools)


def should_continue(messages):
    last_message = messages[-1]
    if not last_message.tool_calls:
        return END
    return "action"


def build():
    workflow = MessageGraph()
    workflow.add_node("agent", model)
    workflow.add_node("action", ToolNode(tools))
    workflow.set_entry_point("agent")
    workflow.add_conditional_edges("agent", should_continue)
    workflow.add_edge("action", "agent")
    return workflow


graph = build().compile(interrupt_before=["action"])
