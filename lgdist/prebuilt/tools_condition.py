"""``tools_condition``: the conditional edge that sends an agent to its tools."""

from typing import Any, Literal

from langchain_core.messages import BaseMessage

from lgdist.constants import END

__all__ = ["tools_condition"]


def tools_condition(
    state: list[BaseMessage] | dict[str, Any] | Any,
    messages_key: str = "messages",
) -> Literal["tools", "__end__"]:
    """Route to ``"tools"`` if the last message has tool calls, else to ``END``.

    ``state`` is a message list (``MessageGraph``), a dict holding
    ``messages_key``, or an object (pydantic model, dataclass) with that
    attribute. Use it as ``graph.add_conditional_edges("agent", tools_condition)``
    with the tool node named ``"tools"``.
    """
    if isinstance(state, list):
        last = state[-1]
    else:
        if isinstance(state, dict):
            messages = state.get(messages_key, [])
        else:
            messages = getattr(state, messages_key, [])
        if not messages:
            raise ValueError(f"No messages found in input state to tool_edge: {state}")
        last = messages[-1]
    if getattr(last, "tool_calls", None):
        return "tools"
    return END  # type: ignore[return-value]
