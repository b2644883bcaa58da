"""Checkpoint rows that store only what a step changed in the versions
bookkeeping.

A checkpoint's ``channel_versions`` names every channel ever written and its
``versions_seen`` every node that ever ran: in a 200-node chain that is
~25 KB of JSON per row, rewritten every step although a step changes a few
entries. A row stored by the local runtime (no idempotency key) whose
parent this store wrote or read holds only the entries that differ from
the parent's, and ``"delta": {"base": parent id, "depth": n}``; every
``DELTA_LIMIT``-th row of a chain is whole again, so a reader rebuilds a row
from at most ``DELTA_LIMIT - 1`` rows before it (one recursive query along
``parent_checkpoint_id``, see ``sql.py``) — or from none, when it holds the
base's bookkeeping already (a thread's next step, a warm restore).

Versions are only ever added or bumped and a node's seen versions only
replaced, never removed; a checkpoint that drops an entry of its parent's is
stored whole. Rows without ``"delta"`` (all rows of older lgdist versions,
and the distributed workers' rows) are whole rows, read as before.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional

__all__ = ["DELTA_LIMIT", "Bookkeeping", "encode", "decode", "is_delta", "base_of"]

DELTA_LIMIT = 32


class Bookkeeping(NamedTuple):
    """A stored checkpoint's whole versions bookkeeping (private copies), and
    how many delta rows lie between it and the last whole row."""

    versions: dict[str, Any]
    seen: dict[str, dict[str, Any]]
    depth: int


def _copy(versions: Mapping[str, Any], seen: Mapping[str, Mapping[str, Any]], depth: int) -> Bookkeeping:
    return Bookkeeping(dict(versions), {node: dict(s) for node, s in seen.items()}, depth)


def encode(checkpoint: Mapping[str, Any], parent_id: Optional[str], parent: Optional[Bookkeeping]) -> tuple[dict, Bookkeeping]:
    """The row body of ``checkpoint`` (without channel values) — a delta of
    ``parent``'s bookkeeping when that is known and allowed — and the
    bookkeeping a store remembers for it."""
    body = {k: v for k, v in checkpoint.items() if k != "channel_values"}
    versions, seen = body.get("channel_versions") or {}, body.get("versions_seen") or {}
    if parent is None or parent_id is None or parent.depth + 1 >= DELTA_LIMIT:
        return body, _copy(versions, seen, 0)
    changed_versions = _changes(versions, parent.versions)
    changed_seen = _changes(seen, parent.seen)
    if changed_versions is None or changed_seen is None:
        return body, _copy(versions, seen, 0)
    depth = parent.depth + 1
    body["channel_versions"] = changed_versions
    body["versions_seen"] = changed_seen
    body["delta"] = {"base": parent_id, "depth": depth}
    return body, _copy(versions, seen, depth)


def _changes(new: Mapping[str, Any], old: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """Entries of ``new`` that ``old`` lacks or holds otherwise; ``None``
    when ``new`` lacks an entry of ``old`` (a delta cannot say so)."""
    changed = {}
    added = 0
    for key, value in new.items():
        before = old.get(key, _ABSENT)
        if before is _ABSENT:
            added += 1
            changed[key] = value
        elif before != value:
            changed[key] = value
    if len(old) + added != len(new):
        return None
    return changed


_ABSENT = object()


def is_delta(body: Mapping[str, Any]) -> bool:
    return "delta" in body


def base_of(body: Mapping[str, Any]) -> tuple[str, int]:
    """The base row's id of a delta row, and the delta row's depth."""
    return body["delta"]["base"], body["delta"]["depth"]


def decode(body: dict, base: Callable[[str], Bookkeeping]) -> tuple[dict, Bookkeeping]:
    """A whole checkpoint (without channel values) from a row body, and its
    bookkeeping; ``base(id)`` gives a delta row's base bookkeeping. The
    checkpoint's dicts are the caller's own."""
    if not is_delta(body):
        versions, seen = body.get("channel_versions") or {}, body.get("versions_seen") or {}
        return body, _copy(versions, seen, 0)
    base_id, depth = base_of(body)
    parent = base(base_id)
    versions = dict(parent.versions)
    versions.update(body.get("channel_versions") or {})
    seen = {node: dict(s) for node, s in parent.seen.items()}
    seen.update({node: dict(s) for node, s in (body.get("versions_seen") or {}).items()})
    whole = {k: v for k, v in body.items() if k != "delta"}
    whole["channel_versions"] = versions
    whole["versions_seen"] = seen
    return whole, _copy(versions, seen, depth)
