"""``EphemeralValue``: holds a write for exactly one step (graph input,
edge triggers)."""

from __future__ import annotations

from typing import Any, Sequence

from lgdist.engine.channels.base import MISSING, ValueChannel
from lgdist.errors import InvalidUpdateError


class EphemeralValue(ValueChannel):
    """Cleared at the end of the step after the one that wrote it."""

    __slots__ = ("guard",)

    def __init__(self, typ: Any = Any, guard: bool = True, key: str = "") -> None:
        super().__init__(typ, key)
        self.guard = guard

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            if self.value is MISSING:
                return False
            self.value = MISSING
            return True
        if len(values) != 1 and self.guard:
            raise InvalidUpdateError(
                f"EphemeralValue(guard=True) can receive only one value per step, got {len(values)}."
            )
        self.value = values[-1]
        return True
