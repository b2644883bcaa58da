"""``LastValue``: a state key without a reducer — one write per step."""

from __future__ import annotations

from typing import Any, Sequence

from lgdist.engine.channels.base import MISSING, ValueChannel
from lgdist.errors import ErrorCode, InvalidUpdateError, create_error_message


class LastValue(ValueChannel):
    """Stores the last value written. Two writes in one step are a conflict."""

    __slots__ = ()

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        if len(values) != 1:
            raise InvalidUpdateError(
                create_error_message(
                    message=f"At key '{self.key}': Can receive only one value per step. "
                    "Use an Annotated key to handle multiple values.",
                    error_code=ErrorCode.INVALID_CONCURRENT_GRAPH_UPDATE,
                )
            )
        self.value = values[-1]
        return True


class AnyValue(LastValue):
    """Like ``LastValue`` but several writes in a step are allowed (they are
    assumed equal; the last one wins)."""

    __slots__ = ()

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            if self.value is MISSING:
                return False
            self.value = MISSING
            return True
        self.value = values[-1]
        return True
