"""``EphemeralValue``: holds a write for exactly one step (graph input,
edge triggers)."""

from __future__ import annotations

from typing import Any, Sequence

from lgdist.engine.channels.base import BaseChannel, MISSING
from lgdist.errors import EmptyChannelError, InvalidUpdateError


class EphemeralValue(BaseChannel):
    """Cleared at the end of the step after the one that wrote it."""

    __slots__ = ("value", "guard")

    def __init__(self, typ: Any = Any, guard: bool = True, key: str = "") -> None:
        super().__init__(typ, key)
        self.guard = guard
        self.value = MISSING

    def _reset(self) -> None:
        self.value = MISSING

    def _restore(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        if self.value is MISSING:
            raise EmptyChannelError()
        return self.value

    def is_available(self) -> bool:
        return self.value is not MISSING

    def checkpoint(self) -> Any:
        return self.value

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
