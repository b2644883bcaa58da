"""``BaseCache``: where a graph keeps the writes of its cached nodes.

An entry is addressed by a namespace (a tuple of strings, one per node) and
a key (a hash of the node's input); it holds the node's writes and may
expire after a time to live. Values are stored as lgdist's tagged JSON (the
checkpoints' format), so a cache returns copies, never the objects a node
wrote.
"""

from __future__ import annotations

from typing import Any, Generic, Mapping, Optional, Sequence, TypeVar

from lgdist import serde

ValueT = TypeVar("ValueT")


class Namespace(tuple):
    """A cache namespace: a tuple of strings."""


FullKey = tuple[Namespace, str]


class BaseCache(Generic[ValueT]):
    """The interface of a cache: ``get``/``set``/``clear`` and async twins
    (which call the sync ones unless a subclass does better)."""

    def dumps(self, value: Any) -> bytes:
        return serde.dumps(value)

    def loads(self, data: bytes) -> Any:
        return serde.loads(data)

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """The values stored (and not expired) under ``keys``."""
        raise NotImplementedError

    def set(self, pairs: Mapping[FullKey, tuple[ValueT, Optional[float]]]) -> None:
        """Store each ``key -> (value, ttl seconds or None)``."""
        raise NotImplementedError

    def clear(self, namespaces: Optional[Sequence[Namespace]] = None) -> None:
        """Forget the given namespaces, or everything."""
        raise NotImplementedError

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        return self.get(keys)

    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, Optional[float]]]) -> None:
        self.set(pairs)

    async def aclear(self, namespaces: Optional[Sequence[Namespace]] = None) -> None:
        self.clear(namespaces)
