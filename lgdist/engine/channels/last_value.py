"""``LastValue``: a state key without a reducer — one write per step."""

from __future__ import annotations

from typing import Any, Sequence

from lgdist.engine.channels.base import BaseChannel, MISSING
from lgdist.errors import EmptyChannelError, ErrorCode, InvalidUpdateError, create_error_message


class LastValue(BaseChannel):
    """Stores the last value written. Two writes in one step are a conflict."""

    __slots__ = ("value",)

    def _reset(self) -> None:
        self.value = MISSING

    def __init__(self, typ: Any = Any, key: str = "") -> None:
        super().__init__(typ, key)
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
