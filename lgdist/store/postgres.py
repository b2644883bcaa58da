"""``PostgresStore``: the SQL memory store on Postgres (psycopg 3)."""

from __future__ import annotations

from typing import Any, Optional, Union

import sqlalchemy as sa

from lgdist.store.base import IndexConfig, TTLConfig
from lgdist.store.sql import SQLStore

__all__ = ["PostgresStore"]


class PostgresStore(SQLStore):
    """Long-term memory in Postgres, beside the checkpoints.

    ``PostgresStore(url_or_engine, index=..., ttl=...)`` takes
    ``postgresql://…`` / ``postgres://…`` or a SQLAlchemy engine. Call
    :meth:`setup` once to create the tables (it also happens on first use).
    """

    def __init__(self, url_or_engine: Union[str, sa.Engine], *, index: Optional[IndexConfig] = None,
                 ttl: Optional[TTLConfig] = None) -> None:  # fmt: skip
        super().__init__(url_or_engine, index=index, ttl=ttl)
        if self.engine.dialect.name != "postgresql":
            raise ValueError(f"PostgresStore needs a Postgres database, got {self.engine.url!r}")

    @classmethod
    def from_conn_string(cls, conn_string: str, **kwargs: Any) -> "PostgresStore":
        """A store for a Postgres URL, usable directly and as a context manager
        (``with PostgresStore.from_conn_string(url) as store: ...``)."""
        return cls(conn_string, **kwargs)
