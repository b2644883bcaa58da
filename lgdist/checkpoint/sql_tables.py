"""The checkpoint store's tables and the statements it runs on them.

Three tables (prefix ``lgdist_``):

* ``lgdist_checkpoints`` - one row per checkpoint, its channel values left out;
  ``UNIQUE (thread_id, checkpoint_ns, idempotency_key)`` makes a duplicated
  step (a chord callback that runs twice) a no-op instead of a second row.
* ``lgdist_blobs`` - one row per ``(channel, version)``; a step writes blobs only
  for the channels in ``new_versions``, so unchanged state is never rewritten.
  A list that only grew since the parent checkpoint is stored as a delta (the
  appended items and ``base_version``, see :mod:`lgdist.checkpoint.delta`); the
  checkpoint row's ``value_chains`` says which rows rebuild it, so a read
  fetches every row it needs in one query.
* ``lgdist_writes`` - pending writes keyed by ``(checkpoint_id, task_id, idx)``;
  a task that runs twice leaves its first writes (insert-or-ignore), except the
  special channels of ``WRITES_IDX_MAP``, whose latest write wins (upsert).

Statements are built once per store (:class:`Statements`), so a step costs
SQLAlchemy's compiled-cache lookups, not statement construction.
"""

from __future__ import annotations

import sqlalchemy as sa

from lgdist.checkpoint.sql_schema import SortedText, dialect_insert

__all__ = ["SETUP_LOCK_KEY", "Statements", "blobs_table", "checkpoints_table", "metadata_obj", "writes_table"]

SETUP_LOCK_KEY = 0x6C676469737431  # pg advisory lock id serializing setup()

metadata_obj = sa.MetaData()

checkpoints_table = sa.Table(
    "lgdist_checkpoints",
    metadata_obj,
    sa.Column("thread_id", SortedText, primary_key=True),
    sa.Column("checkpoint_ns", SortedText, primary_key=True),
    sa.Column("checkpoint_id", SortedText, primary_key=True),
    sa.Column("parent_checkpoint_id", SortedText, nullable=True),
    sa.Column("idempotency_key", SortedText, nullable=True),
    sa.Column("checkpoint", sa.Text, nullable=False),
    sa.Column("metadata", sa.Text, nullable=False),
    # JSON {channel: delta.Link} for the list-valued channels: how their rows chain.
    sa.Column("value_chains", sa.Text, nullable=True),
    # JSON [{channel: value}, [channel, ...]]: small primitive values
    # (numbers, booleans, None, short strings) kept in the row itself, every
    # one the checkpoint has (changed or not), so reading them costs no blob
    # row, and the channels whose values are blobs; a channel with a version
    # in neither has no value (see _inline_hits, which also reads the older
    # {channel: [version, value]} form).
    sa.Column("inline_values", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.UniqueConstraint("thread_id", "checkpoint_ns", "idempotency_key", name="lgdist_checkpoints_idempotency"),
)

blobs_table = sa.Table(
    "lgdist_blobs",
    metadata_obj,
    sa.Column("thread_id", SortedText, primary_key=True),
    sa.Column("checkpoint_ns", SortedText, primary_key=True),
    sa.Column("channel", SortedText, primary_key=True),
    sa.Column("version", SortedText, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=True),
    # A delta row appends ``blob``'s items to the value at ``base_version``;
    # ``level`` is its level in the chain (NULL for a full value).
    sa.Column("base_version", sa.Text, nullable=True),
    sa.Column("level", sa.SmallInteger, nullable=True),
    # Fetches one level of a chain by version range (delta.chain_ranges).
    sa.Index("lgdist_blobs_chain", "thread_id", "checkpoint_ns", "channel", "level", "version"),
)

writes_table = sa.Table(
    "lgdist_writes",
    metadata_obj,
    sa.Column("thread_id", SortedText, primary_key=True),
    sa.Column("checkpoint_ns", SortedText, primary_key=True),
    sa.Column("checkpoint_id", SortedText, primary_key=True),
    sa.Column("task_id", SortedText, primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=True),
    sa.Column("task_path", sa.Text, nullable=False, server_default=""),
)


class Statements:
    """Every statement a store runs, built once for its dialect."""

    def __init__(self, dialect: str) -> None:
        insert = dialect_insert(dialect)
        cp, bl, wr = checkpoints_table, blobs_table, writes_table
        p = sa.bindparam
        ins = insert(cp)
        self.upsert_checkpoint = ins.on_conflict_do_update(
            index_elements=[cp.c.thread_id, cp.c.checkpoint_ns, cp.c.checkpoint_id],
            set_={
                "parent_checkpoint_id": ins.excluded.parent_checkpoint_id,
                "checkpoint": ins.excluded.checkpoint,
                "metadata": ins.excluded.metadata,
                "value_chains": ins.excluded.value_chains,
                "inline_values": ins.excluded.inline_values,
            },
        )
        # No conflict target: the row is skipped when EITHER the id or the
        # idempotency key already exists. RETURNING (not rowcount, which the
        # psycopg dialect reports as -1 here) says whether it was inserted.
        self.insert_checkpoint_once = insert(cp).on_conflict_do_nothing().returning(cp.c.checkpoint_id)
        self.insert_blobs = insert(bl).on_conflict_do_nothing()
        self.insert_writes = insert(wr).on_conflict_do_nothing()
        ins = insert(wr)
        self.upsert_writes = ins.on_conflict_do_update(
            index_elements=[wr.c.thread_id, wr.c.checkpoint_ns, wr.c.checkpoint_id, wr.c.task_id, wr.c.idx],
            set_={name: ins.excluded[name] for name in ("channel", "type", "blob", "task_path")},
        )
        self.checkpoint_columns = [
            cp.c.thread_id, cp.c.checkpoint_ns, cp.c.checkpoint_id,
            cp.c.parent_checkpoint_id, cp.c.checkpoint, cp.c.metadata, cp.c.value_chains, cp.c.inline_values,
        ]  # fmt: skip
        in_thread = sa.and_(cp.c.thread_id == p("thread_id"), cp.c.checkpoint_ns == p("ns"))
        self.select_checkpoint = sa.select(*self.checkpoint_columns).where(
            in_thread, cp.c.checkpoint_id == p("checkpoint_id")
        )
        self.select_latest = (
            sa.select(*self.checkpoint_columns).where(in_thread).order_by(cp.c.checkpoint_id.desc()).limit(1)
        )
        self.select_value_chains = sa.select(cp.c.value_chains).where(
            in_thread, cp.c.checkpoint_id == p("checkpoint_id")
        )
        self.select_writes = (
            sa.select(wr.c.checkpoint_id, wr.c.task_id, wr.c.channel, wr.c.type, wr.c.blob)
            .where(
                wr.c.thread_id == p("thread_id"),
                wr.c.checkpoint_ns == p("ns"),
                wr.c.checkpoint_id.in_(p("ids", expanding=True)),
            )
            .order_by(wr.c.checkpoint_id, wr.c.task_id, wr.c.idx)  # pending_writes order
        )
        self.delete_thread = [sa.delete(t).where(t.c.thread_id == p("thread_id")) for t in (cp, bl, wr)]
        # The rows a delta row's bookkeeping is rebuilt from: its base and
        # the bases before it, ``depth`` rows along parent_checkpoint_id.
        self.select_chain = sa.text(
            "WITH RECURSIVE chain(checkpoint_id, parent_checkpoint_id, checkpoint, n) AS ("
            " SELECT checkpoint_id, parent_checkpoint_id, checkpoint, 1 FROM lgdist_checkpoints"
            " WHERE thread_id = :thread_id AND checkpoint_ns = :ns AND checkpoint_id = :base"
            " UNION ALL"
            " SELECT c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint, chain.n + 1"
            " FROM lgdist_checkpoints c JOIN chain ON c.checkpoint_id = chain.parent_checkpoint_id"
            " WHERE c.thread_id = :thread_id AND c.checkpoint_ns = :ns AND chain.n < :depth"
            ") SELECT checkpoint_id, checkpoint FROM chain"
        )
