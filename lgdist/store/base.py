"""The long-term memory store interface (LangGraph's ``BaseStore``).

A store keeps JSON documents (``Item``) under a hierarchical namespace and a
key, shared across threads: ``put``, ``get``, ``delete``, ``search`` (by
namespace prefix, ``filter``, ``limit``/``offset`` and, when the store has an
``index`` config with an embedding, a natural-language ``query``) and
``list_namespaces``. Every method is a thin wrapper over one operation given
to ``batch``; ``a``-prefixed twins go through ``abatch``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, Iterable, Literal, Mapping, NamedTuple, Optional, TypedDict, Union

from langchain_core.embeddings import Embeddings

from lgdist.errors import InvalidNamespaceError
from lgdist.store.embed import as_embeddings as ensure_embeddings
from lgdist.store.embed import split_path as tokenize_path
from lgdist.store.embed import texts_at_path as get_text_at_path

__all__ = [
    "BaseStore",
    "Item",
    "SearchItem",
    "GetOp",
    "PutOp",
    "SearchOp",
    "ListNamespacesOp",
    "MatchCondition",
    "NamespacePath",
    "Op",
    "Result",
    "IndexConfig",
    "TTLConfig",
    "InvalidNamespaceError",
    "NOT_PROVIDED",
    "Embeddings",
    "ensure_embeddings",
    "get_text_at_path",
    "tokenize_path",
    "validate_op_namespace",
]


class _NotProvided:
    """Marks an argument the caller left out (``ttl=None`` means "never expires")."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_PROVIDED"


NOT_PROVIDED: Any = _NotProvided()


def _as_datetime(value: Union[datetime, str]) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class Item:
    """A stored document: ``value`` under ``namespace`` and ``key``, with the
    times it was created and last updated (timezone-aware, UTC)."""

    __slots__ = ("value", "key", "namespace", "created_at", "updated_at")

    def __init__(
        self,
        *,
        value: dict[str, Any],
        key: str,
        namespace: tuple[str, ...],
        created_at: Union[datetime, str],
        updated_at: Union[datetime, str],
    ) -> None:
        self.value = value
        self.key = key
        self.namespace = tuple(namespace)
        self.created_at = _as_datetime(created_at)
        self.updated_at = _as_datetime(updated_at)

    def _fields(self) -> tuple:
        return (self.value, self.key, self.namespace, self.created_at, self.updated_at)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Item) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((self.namespace, self.key))

    def dict(self) -> dict:
        """The item as JSON-ready data (timestamps in ISO format)."""
        return {
            "namespace": list(self.namespace),
            "key": self.key,
            "value": self.value,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.dict().items())
        return f"{type(self).__name__}({fields})"


class SearchItem(Item):
    """An item found by ``search``; ``score`` is the query's cosine similarity
    to the item's closest indexed field (``None`` without a query)."""

    __slots__ = ("score",)

    def __init__(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        created_at: Union[datetime, str],
        updated_at: Union[datetime, str],
        score: Optional[float] = None,
    ) -> None:
        super().__init__(value=value, key=key, namespace=namespace, created_at=created_at, updated_at=updated_at)
        self.score = score

    def dict(self) -> dict:
        return {**super().dict(), "score": self.score}


class GetOp(NamedTuple):
    """Read one item."""

    namespace: tuple[str, ...]
    key: str
    refresh_ttl: bool = True


class SearchOp(NamedTuple):
    """Find items under a namespace prefix. ``filter`` maps value keys to a
    value (nested dicts match nested values) or to operators ``$eq``, ``$ne``,
    ``$gt``, ``$gte``, ``$lt``, ``$lte``."""

    namespace_prefix: tuple[str, ...]
    filter: Optional[dict[str, Any]] = None
    limit: int = 10
    offset: int = 0
    query: Optional[str] = None
    refresh_ttl: bool = True


NamespacePath = tuple[str, ...]
"""A namespace pattern; the label ``"*"`` matches any one label."""


class MatchCondition(NamedTuple):
    """A namespace pattern anchored at the start (``prefix``) or the end (``suffix``)."""

    match_type: Literal["prefix", "suffix"]
    path: NamespacePath


class ListNamespacesOp(NamedTuple):
    """List the namespaces that match every condition, truncated to
    ``max_depth`` labels, sorted, paged by ``limit``/``offset``."""

    match_conditions: Optional[tuple[MatchCondition, ...]] = None
    max_depth: Optional[int] = None
    limit: int = 100
    offset: int = 0


class PutOp(NamedTuple):
    """Write (or, with ``value=None``, delete) one item. ``index`` names the
    fields to embed (``None``: the store's configured fields, ``False``: none);
    ``ttl`` is in minutes."""

    namespace: tuple[str, ...]
    key: str
    value: Optional[Mapping[str, Any]]
    index: Union[Literal[False], list[str], None] = None
    ttl: Optional[float] = None


Op = Union[GetOp, SearchOp, ListNamespacesOp, PutOp]
Result = Union[Item, list[Item], list[SearchItem], list[tuple[str, ...]], None]


class TTLConfig(TypedDict, total=False):
    """Expiry settings of a store (minutes)."""

    refresh_on_read: bool  # get/search push an item's expiry back (default True)
    omit_expired: bool  # reads skip expired items before a sweep deletes them (default False)
    default_ttl: Optional[float]  # ttl of a put that gives none (default: never expires)
    sweep_interval_minutes: Optional[int]  # how often start_ttl_sweeper() deletes expired items


class IndexConfig(TypedDict, total=False):
    """Semantic search settings: ``embed`` (a langchain-core ``Embeddings``, or
    a function from texts to vectors, sync or async), ``dims`` (the vectors'
    length) and ``fields`` (paths of the value to embed, ``["$"]`` = all of it)."""

    dims: int
    embed: Any
    fields: Optional[list[str]]


def validate_labels(namespace: tuple[str, ...]) -> None:
    """Raise ``InvalidNamespaceError`` for a label SQL stores could not keep apart."""
    for label in namespace:
        if not isinstance(label, str):
            raise InvalidNamespaceError(
                f"namespace {namespace!r} has label {label!r} of type {type(label).__name__}; labels must be strings"
            )
        if not label:
            raise InvalidNamespaceError(f"namespace {namespace!r} has an empty label")
        if "." in label or "\x00" in label:
            raise InvalidNamespaceError(
                f"namespace label {label!r} in {namespace!r} contains a period or a NUL byte, which stores reserve"
            )


def validate_namespace(namespace: tuple[str, ...]) -> None:
    """The rules for a namespace items are written to."""
    if not namespace:
        raise InvalidNamespaceError("a namespace cannot be empty; give at least one label, e.g. ('memories',)")
    validate_labels(namespace)
    if namespace[0] == "langgraph":
        raise InvalidNamespaceError(f'namespace {namespace!r}: the root label "langgraph" is reserved')


def validate_op(op: Op) -> None:
    """Check the namespace labels of an op given straight to ``batch``."""
    if isinstance(op, (GetOp, PutOp)):
        validate_labels(op.namespace)
    elif isinstance(op, SearchOp):
        validate_labels(op.namespace_prefix)
    elif isinstance(op, ListNamespacesOp):
        for condition in op.match_conditions or ():
            validate_labels(condition.path)
    else:
        raise TypeError(f"unknown store operation {type(op).__name__}; expected GetOp, PutOp, SearchOp or ListNamespacesOp")


validate_op_namespace = validate_op  # LangGraph's name


class BaseStore(ABC):
    """A key-value store shared across threads, with optional semantic search
    (``index``) and expiry (``ttl_config``, when ``supports_ttl``)."""

    supports_ttl: bool = False
    ttl_config: Optional[TTLConfig] = None

    @abstractmethod
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in order; one result per op (``None`` for a put)."""

    @abstractmethod
    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """The async twin of :meth:`batch`."""

    # -- the operations, one op each -------------------------------------------------
    def _refresh(self, refresh_ttl: Optional[bool]) -> bool:
        if refresh_ttl is not None:
            return refresh_ttl
        return (self.ttl_config or {}).get("refresh_on_read", True)

    def _get_op(self, namespace: tuple[str, ...], key: str, refresh_ttl: Optional[bool]) -> GetOp:
        validate_labels(namespace)
        return GetOp(tuple(namespace), str(key), self._refresh(refresh_ttl))

    def _search_op(self, prefix: tuple[str, ...], query: Optional[str], filter: Optional[dict[str, Any]],
                   limit: int, offset: int, refresh_ttl: Optional[bool]) -> SearchOp:  # fmt: skip
        validate_labels(prefix)
        return SearchOp(tuple(prefix), filter, limit, offset, query, self._refresh(refresh_ttl))

    def _put_op(self, namespace: tuple[str, ...], key: str, value: Mapping[str, Any],
                index: Union[Literal[False], list[str], None], ttl: Any) -> PutOp:  # fmt: skip
        validate_namespace(namespace)
        if ttl not in (NOT_PROVIDED, None) and not self.supports_ttl:
            raise NotImplementedError(f"{type(self).__name__} does not support ttl; use a store that does, or ttl=None")
        if ttl is NOT_PROVIDED:
            ttl = (self.ttl_config or {}).get("default_ttl")
        return PutOp(tuple(namespace), str(key), value, index=index, ttl=ttl)

    def _delete_op(self, namespace: tuple[str, ...], key: str) -> PutOp:
        validate_labels(namespace)
        return PutOp(tuple(namespace), str(key), None, ttl=None)

    @staticmethod
    def _list_op(prefix: Optional[NamespacePath], suffix: Optional[NamespacePath],
                 max_depth: Optional[int], limit: int, offset: int) -> ListNamespacesOp:  # fmt: skip
        validate_labels(prefix or ())
        validate_labels(suffix or ())
        conditions = []
        if prefix:
            conditions.append(MatchCondition("prefix", tuple(prefix)))
        if suffix:
            conditions.append(MatchCondition("suffix", tuple(suffix)))
        return ListNamespacesOp(tuple(conditions), max_depth, limit, offset)

    def get(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: Optional[bool] = None) -> Optional[Item]:
        """The item at ``namespace``/``key``, or ``None``."""
        return self.batch([self._get_op(namespace, key, refresh_ttl)])[0]  # type: ignore[return-value]

    def search(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: Optional[str] = None,
        filter: Optional[dict[str, Any]] = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: Optional[bool] = None,
    ) -> list[SearchItem]:
        """Items under ``namespace_prefix`` matching ``filter``; ranked by
        similarity to ``query`` when the store has an index."""
        op = self._search_op(namespace_prefix, query, filter, limit, offset, refresh_ttl)
        return self.batch([op])[0]  # type: ignore[return-value]

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Union[Literal[False], list[str], None] = None,
        *,
        ttl: Any = NOT_PROVIDED,
    ) -> None:
        """Create or replace the item at ``namespace``/``key``."""
        self.batch([self._put_op(namespace, key, value, index, ttl)])

    def delete(self, namespace: tuple[str, ...], key: str) -> None:
        """Remove the item (nothing happens if there is none)."""
        self.batch([self._delete_op(namespace, key)])

    def list_namespaces(
        self,
        *,
        prefix: Optional[NamespacePath] = None,
        suffix: Optional[NamespacePath] = None,
        max_depth: Optional[int] = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        """Namespaces that hold items, sorted; ``"*"`` in ``prefix``/``suffix``
        matches any label; ``max_depth`` truncates (and merges) deeper ones."""
        return self.batch([self._list_op(prefix, suffix, max_depth, limit, offset)])[0]  # type: ignore[return-value]

    async def aget(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: Optional[bool] = None) -> Optional[Item]:
        return (await self.abatch([self._get_op(namespace, key, refresh_ttl)]))[0]  # type: ignore[return-value]

    async def asearch(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: Optional[str] = None,
        filter: Optional[dict[str, Any]] = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: Optional[bool] = None,
    ) -> list[SearchItem]:
        op = self._search_op(namespace_prefix, query, filter, limit, offset, refresh_ttl)
        return (await self.abatch([op]))[0]  # type: ignore[return-value]

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Union[Literal[False], list[str], None] = None,
        *,
        ttl: Any = NOT_PROVIDED,
    ) -> None:
        await self.abatch([self._put_op(namespace, key, value, index, ttl)])

    async def adelete(self, namespace: tuple[str, ...], key: str) -> None:
        await self.abatch([self._delete_op(namespace, key)])

    async def alist_namespaces(
        self,
        *,
        prefix: Optional[NamespacePath] = None,
        suffix: Optional[NamespacePath] = None,
        max_depth: Optional[int] = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        return (await self.abatch([self._list_op(prefix, suffix, max_depth, limit, offset)]))[0]  # type: ignore[return-value]
