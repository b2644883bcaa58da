"""``MessageGraph``: a graph whose whole state is one list of messages
(LangGraph's original API, still used by its README example)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from langchain_core.messages import AnyMessage

from lgdist.engine.channels import BaseChannel, BinaryOperatorAggregate
from lgdist.engine.spec import Write
from lgdist.graph.message import add_messages
from lgdist.graph.state import StateGraph

ROOT = "__root__"


class MessageGraph(StateGraph):
    """Every node receives the list of messages and returns messages to add
    (a message, a list of them, or message-likes such as strings)."""

    # The type of the one root value (for the graph's JSON schemas).
    root_type = list[AnyMessage]

    def __init__(self) -> None:
        super().__init__(None)
        self.channels = {ROOT: BinaryOperatorAggregate(list, add_messages, key=ROOT)}

    def _state_keys(self) -> list[str]:
        return [ROOT]

    def _output_keys(self) -> Any:
        return ROOT

    def _input_keys(self) -> list[str]:
        return [ROOT]

    def _read_state(self, channels: Mapping[str, BaseChannel], schema: Any, keys: Sequence[str]) -> Any:
        chan = channels[ROOT]
        return chan.get() if chan.is_available() else []

    def _updates_from_output(self, node: str, output: Any) -> list[Write]:
        return [(ROOT, output)]

    def _updates_from_input(self, value: Any) -> list[Write]:
        return [(ROOT, value)]

    def _build_spec(self, interrupt_before: Any, interrupt_after: Any):  # type: ignore[override]
        spec = super()._build_spec(interrupt_before, interrupt_after)
        spec.stream_keys = ROOT
        return spec
