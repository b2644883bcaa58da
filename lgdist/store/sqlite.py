"""``SqliteStore``: the SQL memory store on SQLite."""

from __future__ import annotations

import sqlite3
from typing import Any, Optional, Union

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from lgdist.store.base import IndexConfig, TTLConfig
from lgdist.store.sql import SQLStore

__all__ = ["SqliteStore"]


class SqliteStore(SQLStore):
    """Long-term memory in SQLite.

    ``SqliteStore(conn)`` wraps an open ``sqlite3.Connection`` (the store
    never closes it); ``SqliteStore(url_or_engine)`` works as for
    :class:`~lgdist.store.sql.SQLStore`.
    """

    def __init__(self, conn: Union[sqlite3.Connection, str, sa.Engine], *, index: Optional[IndexConfig] = None,
                 ttl: Optional[TTLConfig] = None) -> None:  # fmt: skip
        target: Union[str, sa.Engine]
        if isinstance(conn, sqlite3.Connection):
            opened = conn
            # StaticPool hands out this one connection (the store never closes
            # it); the base class sees the StaticPool and serializes access.
            target = sa.create_engine("sqlite://", creator=lambda: opened, poolclass=StaticPool)
        else:
            target = conn
        super().__init__(target, index=index, ttl=ttl)
        if self.engine.dialect.name != "sqlite":
            raise ValueError(f"SqliteStore needs a SQLite database, got {self.engine.url!r}")

    @classmethod
    def from_conn_string(cls, conn_string: str, **kwargs: Any) -> "SqliteStore":
        """A store for ``":memory:"``, a file path or a ``sqlite://`` URL; usable
        directly and as a context manager."""
        if conn_string == ":memory:" or conn_string.startswith("sqlite:"):
            return cls(conn_string, **kwargs)
        return cls(f"sqlite:///{conn_string}", **kwargs)
