"""``SqliteSaver``: the SQL checkpoint store on SQLite, with LangGraph's constructors."""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from lgdist.checkpoint.sql import SQLCheckpointSaver

__all__ = ["SqliteSaver"]


class SqliteSaver(SQLCheckpointSaver):
    """Checkpoints in SQLite.

    ``SqliteSaver(conn)`` wraps an open ``sqlite3.Connection`` (create it with
    ``check_same_thread=False`` if graphs run in threads); the store never
    closes it. ``SqliteSaver(url_or_engine)`` works as for
    :class:`SQLCheckpointSaver`.
    """

    def __init__(self, conn: "sqlite3.Connection | str | sa.Engine") -> None:
        if isinstance(conn, sqlite3.Connection):
            # StaticPool hands out this one connection; the base class sees the
            # StaticPool and serializes access to it with a lock.
            engine = sa.create_engine("sqlite://", creator=lambda: conn, poolclass=StaticPool)
            super().__init__(engine)
        else:
            super().__init__(conn)
        if self.engine.dialect.name != "sqlite":
            raise ValueError(f"SqliteSaver needs a SQLite database, got {self.engine.url!r}")

    @classmethod
    def from_conn_string(cls, conn_string: str) -> "SqliteSaver":
        """A store for ``":memory:"``, a file path or a ``sqlite://`` URL.

        The result is usable directly (``memory = SqliteSaver.from_conn_string(":memory:")``)
        and as a context manager that disposes the engine on exit
        (``with SqliteSaver.from_conn_string(":memory:") as memory: ...``).
        """
        if conn_string == ":memory:" or conn_string.startswith("sqlite:"):
            return cls(conn_string)
        return cls(f"sqlite:///{conn_string}")
