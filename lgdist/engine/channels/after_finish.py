"""Triggers of ``defer=True`` nodes: written like any trigger, but available
only once the run is about to end (a step after which no other node would
run), so the deferred node runs once, after everything else."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from lgdist.engine.channels.barrier import NamedBarrierValue
from lgdist.engine.channels.base import MISSING, BaseChannel
from lgdist.errors import EmptyChannelError


class LastValueAfterFinish(BaseChannel):
    """The edge trigger of a deferred node: keeps the last write, readable
    after :meth:`finish`, cleared when the node ran (:meth:`consume`)."""

    __slots__ = ("value", "finished")

    def __init__(self, typ: Any = Any, key: str = "") -> None:
        super().__init__(typ, key)
        self.value = MISSING
        self.finished = False

    def _reset(self) -> None:
        self.value = MISSING
        self.finished = False

    def checkpoint(self) -> Any:
        return MISSING if self.value is MISSING else (self.value, self.finished)

    def _restore(self, value: Any) -> None:
        self.value, self.finished = value

    def get(self) -> Any:
        if self.value is MISSING or not self.finished:
            raise EmptyChannelError()
        return self.value

    def is_available(self) -> bool:
        return self.value is not MISSING and self.finished

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        self.value = values[-1]
        self.finished = False
        return True

    def consume(self) -> bool:
        if not self.finished:
            return False
        self._reset()
        return True

    def finish(self) -> bool:
        if self.finished or self.value is MISSING:
            return False
        self.finished = True
        return True


class NamedBarrierValueAfterFinish(NamedBarrierValue):
    """A join edge (``add_edge(["a", "b"], "d")``) into a deferred node:
    complete once every source wrote, available once the run finishes."""

    __slots__ = ("finished",)

    def __init__(self, typ: Any = Any, names: Iterable[str] = (), key: str = "") -> None:
        super().__init__(typ, names, key)
        self.finished = False

    def _reset(self) -> None:
        self.seen = set()
        self.finished = False

    def checkpoint(self) -> Any:
        return (sorted(self.seen), self.finished)

    def _restore(self, value: Any) -> None:
        seen, self.finished = value
        self.seen = set(seen)

    def get(self) -> None:
        if not self.is_available():
            raise EmptyChannelError()
        return None

    def is_available(self) -> bool:
        return self.finished and self.seen == self.names

    def consume(self) -> bool:
        if not self.is_available():
            return False
        self._reset()
        return True

    def finish(self) -> bool:
        if self.finished or self.seen != self.names:
            return False
        self.finished = True
        return True
