"""Cache keys of node results: which namespace a node's entries live in,
and the key of one task's input."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

from lgdist import serde
from lgdist.cache.base import FullKey, Namespace
from lgdist.errors import SerializationError

# First part of every node-writes namespace.
WRITES_NAMESPACE = "__lgdist_node_writes__"


def default_cache_key(*args: Any, **kwargs: Any) -> str:
    """The default ``CachePolicy.key_func``: the arguments as canonical JSON
    (lgdist's tagged JSON with sorted keys, so equal dicts give one key
    whatever their order); ``repr`` for a value JSON cannot hold."""
    try:
        encoded = json.loads(serde.dumps([list(args), kwargs]))
    except SerializationError:
        return repr((args, kwargs))
    return json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _identifier(bound: Any) -> str:
    """What the node runs, as ``module:qualname`` (a changed function gets
    new entries; two graphs sharing a cache keep theirs apart)."""
    bound = getattr(bound, "runnable", bound)  # a Runnable node: the runnable itself
    target = getattr(bound, "func", None) or getattr(bound, "afunc", None) or bound
    if not hasattr(target, "__qualname__"):
        target = type(target)
    return f"{getattr(target, '__module__', '')}:{getattr(target, '__qualname__', '')}"


def node_namespace(name: str, bound: Any) -> Namespace:
    return Namespace((WRITES_NAMESPACE, _identifier(bound), name))


def task_cache_key(name: str, bound: Any, policy: Any, input: Any) -> FullKey:
    """Where the writes of a run of node ``name`` on ``input`` are cached."""
    raw = policy.key_func(input)
    digest = hashlib.sha256(raw if isinstance(raw, bytes) else str(raw).encode()).hexdigest()
    return (node_namespace(name, bound), digest)


def policy_ttl(policy: Any) -> Optional[float]:
    return getattr(policy, "ttl", None)
