"""The unit of work of a superstep."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lgdist.engine.spec import NodeSpec, Write


@dataclass
class Task:
    """A node to run in the current step: a pull task (triggered by channel
    versions) or a push task (a ``Send`` packet)."""

    id: str
    name: str
    path: tuple
    input: Any
    triggers: tuple[str, ...]
    node: NodeSpec
    writes: list[Write] = field(default_factory=list)

    @property
    def hidden(self) -> bool:
        return self.node.hidden
