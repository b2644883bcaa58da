"""``NamedBarrierValue``: triggers its node once every named source wrote
(the multi-source join ``add_edge(["a", "b"], "c")``)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from lgdist.engine.channels.base import BaseChannel
from lgdist.errors import EmptyChannelError, InvalidUpdateError


class NamedBarrierValue(BaseChannel):
    __slots__ = ("names", "seen")

    def __init__(self, typ: Any = Any, names: Iterable[str] = (), key: str = "") -> None:
        super().__init__(typ, key)
        self.names = frozenset(names)
        self.seen: set = set()

    def _reset(self) -> None:
        self.seen = set()

    def checkpoint(self) -> Any:
        return sorted(self.seen)

    def _restore(self, value: Any) -> None:
        self.seen = set(value)

    def get(self) -> None:
        if self.seen != self.names:
            raise EmptyChannelError()
        return None

    def is_available(self) -> bool:
        return self.seen == self.names

    def update(self, values: Sequence[str]) -> bool:
        changed = False
        for name in values:
            if name not in self.names:
                raise InvalidUpdateError(f"At key '{self.key}': value {name!r} is not in {sorted(self.names)}")
            if name not in self.seen:
                self.seen.add(name)
                changed = True
        return changed

    def consume(self) -> bool:
        if self.seen == self.names:
            self.seen = set()
            return True
        return False
