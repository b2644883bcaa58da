"""``Topic``: collects every write of a step as a list (``Send`` packets)."""

from __future__ import annotations

from typing import Any, Sequence

from lgdist.engine.channels.base import BaseChannel
from lgdist.errors import EmptyChannelError


class Topic(BaseChannel):
    """A pub/sub channel: the value is the list of values written in the last
    step (or, with ``accumulate=True``, in all steps)."""

    __slots__ = ("values", "accumulate")

    def __init__(self, typ: Any = Any, accumulate: bool = False, key: str = "") -> None:
        super().__init__(typ, key)
        self.accumulate = accumulate
        self.values: list = []

    def _reset(self) -> None:
        self.values = []

    def _restore(self, value: Any) -> None:
        self.values = list(value)

    def get(self) -> list:
        if not self.values:
            raise EmptyChannelError()
        return list(self.values)

    def is_available(self) -> bool:
        return bool(self.values)

    def update(self, values: Sequence[Any]) -> bool:
        changed = False
        if not self.accumulate:
            changed = bool(self.values)
            self.values = []
        for value in values:
            if isinstance(value, list):
                self.values.extend(value)
            else:
                self.values.append(value)
            changed = True
        return changed
