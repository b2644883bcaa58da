"""What every lgdist SQL table set shares on SQLite and Postgres: the
dialect's insert (for ``ON CONFLICT``) and table setup that is safe to run at
every start-up and from several processes at once."""

from __future__ import annotations

from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex, CreateTable

__all__ = ["SortedText", "dialect_insert", "create_tables"]

# Postgres compares text by locale by default; "C" makes ORDER BY and "<" on ids
# agree with Python's string order (SQLite's BINARY collation already does).
SortedText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def dialect_insert(dialect: str) -> Any:
    """The ``insert`` construct with ``on_conflict_do_*`` for ``dialect``."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise ValueError(f"unsupported database {dialect!r}; use SQLite or Postgres")
    return insert


def create_tables(conn: Connection, tables: Iterable[sa.Table], lock_key: int) -> None:
    """Create ``tables`` and their indexes if missing and add columns a newer
    lgdist defines, inside the caller's transaction. On Postgres an advisory
    lock (``lock_key``) serializes concurrent setups, since CREATE TABLE IF
    NOT EXISTS still races on the catalog; IF NOT EXISTS (not check, then
    create) covers two processes starting on one new SQLite file."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
    for table in tables:
        conn.execute(CreateTable(table, if_not_exists=True))
        _add_missing_columns(conn, table)
        for index in table.indexes:
            conn.execute(CreateIndex(index, if_not_exists=True))


def _add_missing_columns(conn: Connection, table: sa.Table) -> None:
    """Bring a table created by an older lgdist up to date. Columns are only
    ever added, and added ones are nullable, so this is safe to run at every
    start-up (a forward-only migration)."""
    present = {col["name"] for col in sa.inspect(conn).get_columns(table.name)}
    for column in table.columns:
        if column.name in present:
            continue
        if not column.nullable:
            raise RuntimeError(
                f"table {table.name} lacks column {column.name!r}, which cannot be added "
                "automatically; recreate the table"
            )
        type_sql = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {type_sql}'))
