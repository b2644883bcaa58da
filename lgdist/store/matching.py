"""What a search or a namespace listing selects, the same for every store:
filters, namespace patterns, similarity ranking and paging."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

from lgdist.store.base import Item, ListNamespacesOp, MatchCondition, SearchItem

__all__ = ["matches_filter", "namespace_matches", "select_namespaces", "rank", "page", "in_prefix"]

_OPERATORS = {
    "$eq": lambda value, target: value == target,
    "$ne": lambda value, target: value != target,
    "$gt": lambda value, target: float(value) > float(target),
    "$gte": lambda value, target: float(value) >= float(target),
    "$lt": lambda value, target: float(value) < float(target),
    "$lte": lambda value, target: float(value) <= float(target),
}


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        if any(str(k).startswith("$") for k in wanted):
            for operator, target in wanted.items():
                compare = _OPERATORS.get(operator)
                if compare is None:
                    raise ValueError(f"unsupported filter operator {operator!r}; use one of {', '.join(_OPERATORS)}")
                if value is None and operator not in ("$eq", "$ne"):
                    return False
                if not compare(value, target):
                    return False
            return True
        return isinstance(value, dict) and all(_matches(value.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, (list, tuple)):
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(wanted)
            and all(_matches(v, w) for v, w in zip(value, wanted))
        )
    return value == wanted


def matches_filter(value: dict[str, Any], filter: Optional[dict[str, Any]]) -> bool:
    """Whether a stored value satisfies a search filter (every key must match)."""
    return not filter or all(_matches(value.get(key), wanted) for key, wanted in filter.items())


def in_prefix(namespace: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    return namespace[: len(prefix)] == tuple(prefix)


def namespace_matches(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    """A prefix or suffix pattern, where the label ``"*"`` matches any label."""
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path))
    else:
        raise ValueError(f"unsupported namespace match type {condition.match_type!r}; use 'prefix' or 'suffix'")
    return all(want == "*" or label == want for label, want in pairs)


def select_namespaces(namespaces: Sequence[tuple[str, ...]], op: ListNamespacesOp) -> list[tuple[str, ...]]:
    """The answer to a ``ListNamespacesOp`` over the namespaces that hold items."""
    chosen = {ns for ns in namespaces if all(namespace_matches(ns, c) for c in op.match_conditions or ())}
    if op.max_depth is not None:
        chosen = {ns[: op.max_depth] for ns in chosen}
    return sorted(chosen)[op.offset : op.offset + op.limit]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


def _found(item: Item, score: Optional[float] = None) -> SearchItem:
    return SearchItem(item.namespace, item.key, item.value, item.created_at, item.updated_at, score)


def page(items: Sequence[Item], limit: int, offset: int) -> list[SearchItem]:
    """Plain paging, in the order the store keeps its items."""
    return [_found(item) for item in items[offset : offset + limit]]


def rank(
    candidates: Sequence[tuple[Item, Sequence[Sequence[float]]]],
    query_vector: Sequence[float],
    limit: int,
    offset: int,
) -> list[SearchItem]:
    """Items by their best field's similarity to the query, best first,
    paged; items with no vector (not indexed) fill the page after them."""
    scored: list[tuple[float, int, Item]] = []
    unscored: list[Item] = []
    for position, (item, vectors) in enumerate(candidates):
        if vectors:
            scored.append((max(cosine(query_vector, v) for v in vectors), position, item))
        else:
            unscored.append(item)
    scored.sort(key=lambda entry: (-entry[0], entry[1]))  # stable among equal scores
    kept = [_found(item, float(score)) for score, _, item in scored[offset : offset + limit]]
    if len(kept) < limit:
        kept.extend(_found(item) for item in unscored[: limit - len(kept)])
    return kept
