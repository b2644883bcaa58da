"""Reading channel values, delta chains included, from the SQL blobs table.

A checkpoint names one blob row per channel; a delta row names its base, and
the checkpoint's ``value_chains`` says where each chain's rows lie (see
:func:`lgdist.checkpoint.delta.chain_ranges`). :func:`load_chains` fetches
every row a batch of checkpoints needs in one statement of UNION ALL arms (one
per channel and per chain level, each an index seek), then fetches by version
any base the links did not name, until every chain is complete or a row is
known to be missing.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterator, Optional, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lgdist import serde
from lgdist.checkpoint import delta

__all__ = ["ABSENT", "EMPTY", "StoredRows", "join_pieces", "chunks", "load_chains"]

EMPTY = delta.EMPTY  # a blob row for a channel that has a version but no value
ABSENT = object()  # join_pieces' answer for an EMPTY row

# channel -> version -> (base version of a delta or None, (type, blob))
StoredRows = dict[str, dict[str, tuple[Optional[str], tuple[str, Any]]]]

_IN_BATCH = 500  # versions per IN (...) list
_ARMS_PER_QUERY = 64  # UNION ALL arms per statement
_BINDS_PER_QUERY = 900  # bound parameters per statement (old SQLite allows 999)


def load_chains(
    conn: Connection,
    blobs: sa.Table,
    thread_id: str,
    ns: str,
    checkpoints: Sequence[tuple[dict[str, Any], dict[str, delta.Link]]],
) -> StoredRows:
    """The rows that rebuild these checkpoints' values; ``checkpoints`` are
    ``(channel_versions, links)`` pairs of one thread and namespace."""
    exact: dict[str, set[str]] = defaultdict(set)
    ranges: dict[tuple[str, int, str], str] = {}
    for versions, links in checkpoints:
        for channel, version in versions.items():
            link = links.get(channel)
            if link is None or link.version != str(version):
                exact[channel].add(str(version))
                continue
            root, levels = delta.chain_ranges(link)
            exact[channel].add(root)
            for level, after, up_to in levels:
                # Checkpoints of one chain share ranges; the widest covers all.
                key = (channel, level, after)
                ranges[key] = max(ranges.get(key, up_to), up_to)
    found: StoredRows = defaultdict(dict)
    _fetch(conn, blobs, thread_id, ns, exact, ranges, found)
    tried = {(channel, v) for channel, versions in exact.items() for v in versions}
    while True:
        gaps: dict[str, set[str]] = defaultdict(set)
        for versions, _links in checkpoints:
            for channel, version in versions.items():
                gap = delta.assemble(found.get(channel, {}), str(version))[1]
                if gap is not None and (channel, gap) not in tried:
                    gaps[channel].add(gap)
                    tried.add((channel, gap))
        if not gaps:
            return found
        _fetch(conn, blobs, thread_id, ns, gaps, {}, found)


def join_pieces(pieces: Sequence[tuple[str, Any]]) -> Any:
    """A value from its stored pieces, root first: one full value, or a list
    root and the items each delta appended. ``ABSENT`` for an empty row."""
    if len(pieces) == 1:
        type_, blob = pieces[0]
        return ABSENT if type_ == EMPTY else serde.deserialize_value(type_, blob)
    value: list[Any] = []
    for type_, blob in pieces:
        value.extend(serde.deserialize_value(type_, blob))
    return value


def _fetch(
    conn: Connection,
    blobs: sa.Table,
    thread_id: str,
    ns: str,
    exact: dict[str, set[str]],
    ranges: dict[tuple[str, int, str], str],
    found: StoredRows,
) -> None:
    """Rows by ``channel -> versions`` and by ``(channel, level, after) ->
    up_to`` ranges, into ``found``. Arms of a UNION ALL rather than one OR:
    planners turn an OR into a scan of the thread's whole history."""
    c = blobs.c
    # Exact rows go in one (channel, version) IN list per chunk: an arm per
    # channel made a 200-node graph send 200-arm statements on every load.
    pairs = sorted((channel, version) for channel, versions in exact.items() for version in versions)
    arms: list[tuple[int, Any]] = [
        (2 * len(part), sa.tuple_(c.channel, c.version).in_(part))
        for part in chunks(pairs, _IN_BATCH // 2)
    ]
    arms += [
        (4, sa.and_(c.channel == channel, c.level == level, c.version > after, c.version <= up_to))
        for (channel, level, after), up_to in sorted(ranges.items())
    ]
    for batch in _batches(arms):
        selects = [
            sa.select(c.channel, c.version, c.type, c.blob, c.base_version).where(
                c.thread_id == thread_id, c.checkpoint_ns == ns, arm
            )
            for arm in batch
        ]
        for row in conn.execute(selects[0] if len(selects) == 1 else sa.union_all(*selects)):
            found[row.channel][row.version] = (row.base_version, (row.type, row.blob))


def _batches(arms: Sequence[tuple[int, Any]]) -> Iterator[list[Any]]:
    """Arms grouped so a statement stays under the parameter and arm limits
    (each arm also binds the thread id and namespace)."""
    batch: list[Any] = []
    binds = 0
    for cost, arm in arms:
        if batch and (binds + cost + 2 > _BINDS_PER_QUERY or len(batch) >= _ARMS_PER_QUERY):
            yield batch
            batch, binds = [], 0
        batch.append(arm)
        binds += cost + 2
    if batch:
        yield batch


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
