"""Postgres: checkpoints, blobs and writes as one statement, in autocommit.

The local runtime stores a step (or, writing behind with
``durability="async"``, several steps queued together) as one statement of
data-modifying CTEs — checkpoint rows, the blobs of their changed channels,
their tasks' writes — atomic as any single statement. Rows travel as arrays
(``unnest``), so the statement's text is the same whatever the number of
rows (it names only the tables a store has rows for): SQLAlchemy does not
compile it per step (building a CTE with the rows as literal ``VALUES``
did, at ~2 ms a step for a small row), and psycopg prepares it on the
server after a few executions. The arrays go in
binary (``%b``): psycopg's text form quotes every character of a 20 KB
checkpoint in Python (~1.5 ms a row), the binary form copies it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional, Sequence

from sqlalchemy.engine import Connection

__all__ = ["store_keyed_rows", "store_rows"]

_WRITE_COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path"
_WRITE_ARRAYS = (
    "%({p}_thread)b::text[], %({p}_ns)b::text[], %({p}_checkpoint)b::text[], %({p}_task)b::text[], "
    "%({p}_idx)b::int[], %({p}_channel)b::text[], %({p}_type)b::text[], %({p}_blob)b::bytea[], %({p}_path)b::text[]"
)

# The statements are built from the parts a store has rows for (a step
# with no special writes has no ``s`` part, ...): an empty part still costs
# its arrays' encoding and its planning, ~a quarter of a small step's
# statement. Each combination is one fixed text, prepared once per
# connection.
_PARTS = ("c", "b", "w", "s")

# Checkpoint rows are upserted (the local runtime stores no idempotency
# key); blob keys carry a random version suffix, so an existing blob row is
# the same value written by a retried step: keep it. A task that runs twice
# keeps its first writes (w); special channels (error, interrupt, resume,
# ...) keep the latest (s).
_UPSERT = {
    "c": """c AS (
    INSERT INTO lgdist_checkpoints
        (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,
         checkpoint, metadata, value_chains, inline_values)
    SELECT * FROM unnest(%(c_thread)b::text[], %(c_ns)b::text[], %(c_id)b::text[], %(c_parent)b::text[],
                         %(c_checkpoint)b::text[], %(c_metadata)b::text[], %(c_chains)b::text[],
                         %(c_inline)b::text[])
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
        parent_checkpoint_id = EXCLUDED.parent_checkpoint_id, checkpoint = EXCLUDED.checkpoint,
        metadata = EXCLUDED.metadata, value_chains = EXCLUDED.value_chains,
        inline_values = EXCLUDED.inline_values
    RETURNING 1
)""",
    "b": """b AS (
    INSERT INTO lgdist_blobs (thread_id, checkpoint_ns, channel, version, type, blob, base_version, level)
    SELECT * FROM unnest(%(b_thread)b::text[], %(b_ns)b::text[], %(b_channel)b::text[], %(b_version)b::text[],
                         %(b_type)b::text[], %(b_blob)b::bytea[], %(b_base)b::text[], %(b_level)b::smallint[])
    ON CONFLICT DO NOTHING
    RETURNING 1
)""",
    "w": f"""w AS (
    INSERT INTO lgdist_writes ({_WRITE_COLUMNS})
    SELECT * FROM unnest({_WRITE_ARRAYS.format(p="w")})
    ON CONFLICT DO NOTHING
    RETURNING 1
)""",
    "s": f"""s AS (
    INSERT INTO lgdist_writes ({_WRITE_COLUMNS})
    SELECT * FROM unnest({_WRITE_ARRAYS.format(p="s")})
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET
        channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob, task_path = EXCLUDED.task_path
    RETURNING 1
)""",
}


@lru_cache(maxsize=16)
def _statement(parts: tuple[str, ...]) -> str:
    return "WITH " + ", ".join(_UPSERT[p] for p in parts) + " SELECT 1"


# A worker's rows: each checkpoint row is inserted once (under its
# idempotency key); the blobs and writes only when every checkpoint row was
# (else the caller rolls the transaction back: another delivery stored the
# chain's first step). With a gate (the caller's precondition as a
# data-modifying statement returning one row ``(ok, answer)``), nothing is
# inserted unless it says ok. The statement answers the gate's row and how
# many checkpoint rows it inserted.
_KEYED = {
    "c": """c AS (
    INSERT INTO lgdist_checkpoints
        (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, idempotency_key,
         checkpoint, metadata, value_chains, inline_values)
    SELECT u.* FROM unnest(%(c_thread)b::text[], %(c_ns)b::text[], %(c_id)b::text[], %(c_parent)b::text[],
                           %(c_key)b::text[], %(c_checkpoint)b::text[], %(c_metadata)b::text[],
                           %(c_chains)b::text[], %(c_inline)b::text[]) AS u
    WHERE EXISTS (SELECT 1 FROM g WHERE g.ok)
    ON CONFLICT DO NOTHING
    RETURNING 1
)""",
    "b": """b AS (
    INSERT INTO lgdist_blobs (thread_id, checkpoint_ns, channel, version, type, blob, base_version, level)
    SELECT u.* FROM unnest(%(b_thread)b::text[], %(b_ns)b::text[], %(b_channel)b::text[], %(b_version)b::text[],
                           %(b_type)b::text[], %(b_blob)b::bytea[], %(b_base)b::text[], %(b_level)b::smallint[]) AS u, n
    WHERE n.stored = %(c_count)s AND EXISTS (SELECT 1 FROM g WHERE g.ok)
    ON CONFLICT DO NOTHING
    RETURNING 1
)""",
    "w": f"""w AS (
    INSERT INTO lgdist_writes ({_WRITE_COLUMNS})
    SELECT u.* FROM unnest({_WRITE_ARRAYS.format(p="w")}) AS u, n
    WHERE n.stored = %(c_count)s AND EXISTS (SELECT 1 FROM g WHERE g.ok)
    ON CONFLICT DO NOTHING
    RETURNING 1
)""",
    "s": f"""s AS (
    INSERT INTO lgdist_writes ({_WRITE_COLUMNS})
    SELECT u.* FROM unnest({_WRITE_ARRAYS.format(p="s")}) AS u, n
    WHERE n.stored = %(c_count)s AND EXISTS (SELECT 1 FROM g WHERE g.ok)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET
        channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob, task_path = EXCLUDED.task_path
    RETURNING 1
)""",
}


@lru_cache(maxsize=64)
def _keyed_statement(gate: str, parts: tuple[str, ...]) -> str:
    # n counts the inserted checkpoint rows (0 without a c part).
    stored = "SELECT count(*) AS stored FROM c" if "c" in parts else "SELECT 0::bigint AS stored"
    ctes = [f"g AS (\n    {gate}\n)"]
    ctes += [_KEYED["c"]] if "c" in parts else []
    ctes.append(f"n AS (\n    {stored}\n)")
    ctes += [_KEYED[p] for p in parts if p != "c"]
    return "WITH " + ", ".join(ctes) + " SELECT (SELECT ok FROM g), (SELECT answer FROM g), stored FROM n"


_UNGATED = "SELECT true AS ok, NULL::text AS answer"


def _parts(params: dict[str, Any]) -> tuple[str, ...]:
    """The parts with rows: a part's first array is not empty."""
    return tuple(p for p in _PARTS if params.get(f"{p}_thread"))


def _columns(rows: Sequence[dict], names: dict[str, str]) -> dict[str, list]:
    return {param: [r[column] for r in rows] for param, column in names.items()}


def _write_names(prefix: str) -> dict[str, str]:
    return {
        f"{prefix}_thread": "thread_id", f"{prefix}_ns": "checkpoint_ns", f"{prefix}_checkpoint": "checkpoint_id",
        f"{prefix}_task": "task_id", f"{prefix}_idx": "idx", f"{prefix}_channel": "channel",
        f"{prefix}_type": "type", f"{prefix}_blob": "blob", f"{prefix}_path": "task_path",
    }  # fmt: skip


_CHECKPOINT_NAMES = {
    "c_thread": "thread_id", "c_ns": "checkpoint_ns", "c_id": "checkpoint_id", "c_parent": "parent_checkpoint_id",
    "c_checkpoint": "checkpoint", "c_metadata": "metadata", "c_chains": "value_chains", "c_inline": "inline_values",
}  # fmt: skip
_KEYED_CHECKPOINT_NAMES = {**_CHECKPOINT_NAMES, "c_key": "idempotency_key"}
_BLOB_NAMES = {
    "b_thread": "thread_id", "b_ns": "checkpoint_ns", "b_channel": "channel", "b_version": "version",
    "b_type": "type", "b_blob": "blob", "b_base": "base_version", "b_level": "level",
}  # fmt: skip
_REGULAR_NAMES = _write_names("w")
_SPECIAL_NAMES = _write_names("s")


def _key(row: dict, columns: Sequence[str]) -> tuple:
    return tuple(row[c] for c in columns)


_CHECKPOINT_KEY = ("thread_id", "checkpoint_ns", "checkpoint_id")
_WRITE_KEY = ("thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx")


def store_rows(
    conn: Connection,
    checkpoints: Sequence[dict],
    blobs: Sequence[dict],
    regular: Sequence[dict],
    special: Sequence[dict],
) -> None:
    """Store rows as built by the SQL store, in order (a later checkpoint
    row or special write replaces an earlier one with its key, a later
    regular write does not), in one statement on an autocommit ``conn``."""
    # One statement may not upsert a row twice: keep the row that wins.
    checkpoints = list({_key(r, _CHECKPOINT_KEY): r for r in checkpoints}.values())
    special = list({_key(r, _WRITE_KEY): r for r in special}.values())
    firsts: dict[tuple, dict] = {}
    for r in regular:
        firsts.setdefault(_key(r, _WRITE_KEY), r)
    params: dict[str, Any] = {
        **_columns(checkpoints, _CHECKPOINT_NAMES),
        **_columns(blobs, _BLOB_NAMES),
        **_columns(list(firsts.values()), _REGULAR_NAMES),
        **_columns(special, _SPECIAL_NAMES),
    }
    parts = _parts(params)
    if parts:
        conn.exec_driver_sql(_statement(parts), params)


def _writes_params(regular: Sequence[dict], special: Sequence[dict]) -> dict[str, Any]:
    special = list({_key(r, _WRITE_KEY): r for r in special}.values())
    firsts: dict[tuple, dict] = {}
    for r in regular:
        firsts.setdefault(_key(r, _WRITE_KEY), r)
    return {**_columns(list(firsts.values()), _REGULAR_NAMES), **_columns(special, _SPECIAL_NAMES)}


def store_keyed_rows(
    conn: Connection,
    checkpoints: Sequence[dict],
    blobs: Sequence[dict],
    regular: Sequence[dict],
    special: Sequence[dict],
    gate: Optional[tuple[str, dict]] = None,
) -> tuple[bool, Any, int]:
    """Store a worker's rows (checkpoint rows with idempotency keys, each
    inserted once) in one statement, inside the caller's transaction: the
    blobs and writes only if every checkpoint row was inserted, nothing
    unless ``gate`` (``(sql, params)``, see above) says ok. Returns the
    gate's ``(ok, answer)`` and how many checkpoint rows were inserted;
    fewer than given means another delivery stored one of them first, and
    the caller rolls back."""
    gate_sql, gate_params = gate or (_UNGATED, {})
    params: dict[str, Any] = {
        **gate_params,
        **_columns(checkpoints, _KEYED_CHECKPOINT_NAMES),
        **_columns(blobs, _BLOB_NAMES),
        **_writes_params(regular, special),
        "c_count": len(checkpoints),
    }
    ok, answer, stored = conn.exec_driver_sql(_keyed_statement(gate_sql, _parts(params)), params).one()
    return bool(ok), answer, int(stored)
