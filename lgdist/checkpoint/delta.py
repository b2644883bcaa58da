"""Delta storage for channels whose list value only grows.

A channel such as ``messages`` (``add_messages``) or ``Annotated[list,
operator.add]`` gets a new version every step although its value only grows.
Rewriting the whole list each step makes a step cost O(history). Instead a
store may write a *delta*: the items appended since a *base* version of the
same channel. Bases form a chain that ends at a *root*, a full value.

The chain is shaped like a skip list with fanout ``FANOUT`` (B = 32). Rows are
numbered from their root (index 0); row k's *level* is the number of trailing
zero base-B digits of k, and its base is the newest earlier row whose level is
at least its own. So rows 1..31 each add one step's items to the row before,
row 32 holds every item since the root, row 64 every item since row 32, ...,
row 1024 every item since the root again. Two bounds follow:

* reading a value takes at most B-1 rows per level plus the root (≤ 32 rows up
  to 31 steps, ≤ 63 up to 1023, ≤ 94 up to 32767), and each item is read once:
  the rows of a chain hold disjoint slices of the list;
* each appended item is written once per level, so a step writes its own items
  times ~log_B(history): flat in practice, instead of the whole history (or,
  with a snapshot every N deltas, history/N).

A value that does not extend its parent's (an item replaced by id, removed,
overwritten) is written in full and starts a new chain. Items already stored
are taken as immutable, as reducers treat them: a node that edits an old item
in place instead of returning a replacement is not seen by a delta (a full
rewrite would have stored the edit).

A store records, per checkpoint, the :class:`Link` of each list-valued
channel; the parent's link decides the next row, and a checkpoint's link tells
a reader which rows to fetch (:func:`chain_ranges`) in one query.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, NamedTuple, Optional

from lgdist import serde

__all__ = [
    "FANOUT", "Link", "Row", "extends", "plan_row", "chain_ranges", "assemble",
    "carried_links", "links_to_json", "links_from_json", "EMPTY", "Blob", "plan_blobs",
]  # fmt: skip

FANOUT = 32
_MAX_CHAIN = 100_000  # far above any real chain (94 rows at 32767 steps); stops a cycle


class Link(NamedTuple):
    """Where one stored list value sits in its chain.

    ``anchors[t - 1]`` is ``(version, length)`` of the newest row at or before
    this one whose level is >= t, for t = 1 .. number of base-B digits of
    ``index``; the last anchor is the root. A root (index 0) has no anchors.
    """

    version: str
    length: int
    index: int
    anchors: tuple[tuple[str, int], ...] = ()

    def anchor(self, level: int) -> tuple[str, int]:
        """The newest row at or before this one with at least ``level``."""
        if level == 0 or not self.anchors:
            return (self.version, self.length)
        return self.anchors[min(level, len(self.anchors)) - 1]


class Row(NamedTuple):
    """How to store one channel value: ``items`` (the whole list, or the tail
    after ``base``), the ``level`` of the row (``None`` for a root) and the
    resulting link."""

    items: Any
    base: Optional[str]
    level: Optional[int]
    link: Optional[Link]


def _level(index: int) -> int:
    level = 0
    while index and index % FANOUT == 0:
        index //= FANOUT
        level += 1
    return level


def _digits(index: int) -> int:
    digits = 0
    while index:
        index //= FANOUT
        digits += 1
    return digits


def extends(new: list, old: list) -> bool:
    """Whether ``new`` starts with ``old``'s items. Reducers keep the old items
    as the same objects, so ``is`` decides almost always. Other items count
    only if they would be stored identically: equal is not enough (``1 == True``,
    ``{"a": 1} == {"a": 1.0}``), and the stored base holds ``old``'s form."""
    if len(new) < len(old):
        return False
    for a, b in zip(old, new):
        if a is not b and not _stored_alike(a, b):
            return False
    return True


def _stored_alike(a: Any, b: Any) -> bool:
    if type(a) is not type(b) or a != b:
        return False
    try:
        return serde.dumps(a) == serde.dumps(b)
    except Exception:  # not serializable: the full write reports it, naming the channel
        return False


def plan_row(value: Any, version: str, parent: Optional[Link], previous: Any) -> Row:
    """Decide how to store ``value`` (the channel's value at ``version``).

    ``parent`` is the channel's link in the parent checkpoint (``None`` when
    unknown) and ``previous`` the parent's value as the caller holds it. A
    delta is written only when both agree (``previous`` has the length stored
    for the parent) and ``value`` extends ``previous``; anything else is a root.
    Values that are not lists get no link.
    """
    if type(value) is not list:
        return Row(value, None, None, None)
    if (
        parent is None
        or type(previous) is not list
        or len(previous) != parent.length
        or parent.version == version
        or not extends(value, previous)
    ):
        return Row(value, None, None, Link(version, len(value), 0))
    index = parent.index + 1
    level = _level(index)
    base_version, base_length = parent.anchor(level)
    me = (version, len(value))
    # Levels up to this row's own point at this row; higher ones keep the
    # parent's anchors, the last of which is always the root.
    anchors = tuple(me if t <= level else parent.anchor(t) for t in range(1, _digits(index) + 1))
    return Row(value[base_length:], base_version, level, Link(version, len(value), index, anchors))


def chain_ranges(link: Link) -> tuple[str, list[tuple[int, str, str]]]:
    """The rows that rebuild ``link``'s value: its root's version, and per
    level ``(level, after_version, up_to_version)`` ranges whose rows of exactly
    that level are the rest of the chain (plus rows of sibling branches, which
    following the base links leaves out)."""
    ranges = []
    for t in range(len(link.anchors)):
        hi, lo = link.anchor(t)[0], link.anchor(t + 1)[0]
        if hi != lo:
            ranges.append((t, lo, hi))
    return link.anchor(len(link.anchors))[0], ranges


def assemble(rows: Mapping[str, tuple[Optional[str], Any]], version: str) -> tuple[list[Any], Optional[str]]:
    """The stored pieces of ``version``'s value, root first, from ``rows``
    (version -> (base version or None, piece)), and the first version of the
    chain that ``rows`` lacks (``None`` when the chain is complete)."""
    pieces = []
    for _ in range(_MAX_CHAIN):
        found = rows.get(version)
        if found is None:
            return pieces, version
        base, piece = found
        pieces.append(piece)
        if base is None:
            pieces.reverse()
            return pieces, None
        version = base
    raise ValueError(f"delta chain of version {version!r} does not end")  # a cycle: corrupt rows


def links_to_json(links: Mapping[str, Link]) -> dict[str, list]:
    """Links as compact JSON-able lists (stored with each checkpoint)."""
    return {c: [l.version, l.length, l.index, [list(a) for a in l.anchors]] for c, l in links.items()}


def links_from_json(data: Optional[Mapping[str, Iterable]]) -> dict[str, Link]:
    """Inverse of :func:`links_to_json`; ``None`` (no links stored) gives ``{}``."""
    if not data:
        return {}
    return {
        c: Link(v, length, index, tuple((a, n) for a, n in anchors))
        for c, (v, length, index, anchors) in data.items()
    }


def carried_links(parent: Mapping[str, Link], versions: Mapping[str, Any], written: Iterable[str]) -> dict[str, Link]:
    """Parent links still true for a checkpoint: channels not rewritten whose
    version is unchanged."""
    written = set(written)
    return {
        c: link
        for c, link in parent.items()
        if c not in written and str(versions.get(c)) == link.version
    }


EMPTY = "empty"  # the blob type of a channel that has a version but no value


class Blob(NamedTuple):
    """One blob to store for a checkpoint: a full value, a delta (``base``
    set) or an empty marker."""

    channel: str
    version: str
    type: str
    blob: Optional[bytes]
    base: Optional[str]
    level: Optional[int]


def plan_blobs(
    checkpoint: Mapping[str, Any],
    new_versions: Mapping[str, Any],
    parent_links: Mapping[str, Link],
    previous_values: Mapping[str, Any],
) -> tuple[list[Blob], dict[str, Link]]:
    """The blobs a store writes for ``checkpoint`` (only ``new_versions``),
    serialized, and the checkpoint's links. Shared by every store so that
    memory and SQL stores choose deltas the same way; serializing everything
    up front means a bad value stores nothing."""
    values = checkpoint.get("channel_values") or {}
    links = carried_links(parent_links, checkpoint.get("channel_versions") or {}, new_versions)
    blobs: list[Blob] = []
    for channel, version in new_versions.items():
        version = str(version)
        if channel not in values:
            blobs.append(Blob(channel, version, EMPTY, None, None, None))
            continue
        planned = plan_row(values[channel], version, parent_links.get(channel), previous_values.get(channel))
        type_, blob = serde.serialize_value(planned.items, channel)
        if planned.link is not None:
            links[channel] = planned.link
        blobs.append(Blob(channel, version, type_, blob, planned.base, planned.level))
    return blobs, links
