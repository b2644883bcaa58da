"""``PostgresSaver``: the SQL checkpoint store on Postgres (psycopg 3)."""

from __future__ import annotations

import sqlalchemy as sa

from lgdist.checkpoint.sql import SQLCheckpointSaver

__all__ = ["PostgresSaver"]


class PostgresSaver(SQLCheckpointSaver):
    """Checkpoints in Postgres.

    ``PostgresSaver(url_or_engine)`` takes ``postgresql://…`` / ``postgres://…``
    (run with psycopg 3) or a SQLAlchemy engine. Call :meth:`setup` once to
    create the tables (it also happens on first use).
    """

    def __init__(self, url_or_engine: "str | sa.Engine") -> None:
        super().__init__(url_or_engine)
        if self.engine.dialect.name != "postgresql":
            raise ValueError(f"PostgresSaver needs a Postgres database, got {self.engine.url!r}")

    @classmethod
    def from_conn_string(cls, conn_string: str) -> "PostgresSaver":
        """A store for a Postgres URL, usable directly and as a context manager
        (``with PostgresSaver.from_conn_string(url) as checkpointer: ...``)."""
        return cls(conn_string)
