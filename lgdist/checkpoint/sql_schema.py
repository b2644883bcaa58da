"""What every lgdist SQL table set shares on SQLite and Postgres: the
engine, the dialect's insert (for ``ON CONFLICT``), table setup that is safe
to run at every start-up and from several processes at once, and
:class:`SQLDatabase`, the base of the checkpoint store and the memory store
(engine ownership, lazy setup, connections and transactions), and the
retry of an operation whose pooled connection turned out to be dead."""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable, Iterable, Iterator, Union

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateIndex, CreateTable

__all__ = [
    "SortedText",
    "SQLDatabase",
    "create_checkpoint_engine",
    "create_tables",
    "dialect_insert",
    "retry_on_disconnect",
]

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


def create_checkpoint_engine(url: str, *, pre_ping: bool = False) -> Engine:
    """An engine tuned for checkpoints: shared in-memory SQLite, WAL for file
    SQLite, psycopg 3 with pre-ping (recovers after a server restart) for Postgres."""
    if url in (":memory:", "sqlite://", "sqlite:///:memory:"):
        # StaticPool: one connection, so every thread sees the same database.
        return sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            url = "postgresql+psycopg://" + url[len(scheme):]
    backend = sa.make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported checkpoint database {backend!r}; use SQLite or Postgres")
    if backend == "sqlite":
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _tune_sqlite_file)
        return engine
    # No pre-ping by default: it costs a round trip per checkout. A pooled
    # connection that died (a server restart) fails its first statement;
    # the pool is then invalidated and the store's operations retry once
    # (see _retry_on_disconnect), the workers' tasks on any connection error.
    return sa.create_engine(url, pool_pre_ping=pre_ping)


def _tune_sqlite_file(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while a writer commits; the busy timeout makes a
    # second writer wait for the lock instead of failing with "database is locked".
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA busy_timeout=30000")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class SQLDatabase:
    """A set of lgdist tables in one database: ``url_or_engine`` is a URL
    (see :func:`create_checkpoint_engine`) or a ready engine, whose owner
    keeps disposing it. Tables are created on first use (or by
    :meth:`setup`); a subclass names them in ``tables`` and the Postgres
    advisory lock that serializes their setup in ``setup_lock_key``."""

    tables: sa.MetaData
    setup_lock_key: int

    def __init__(self, url_or_engine: Union[str, Engine]) -> None:
        self._owns_engine = not isinstance(url_or_engine, Engine)
        self.engine: Engine = create_checkpoint_engine(url_or_engine) if self._owns_engine else url_or_engine  # type: ignore[arg-type]
        # One shared connection (in-memory SQLite, a wrapped sqlite3
        # connection) cannot interleave transactions from several threads.
        self._lock: Any = threading.RLock() if isinstance(self.engine.pool, StaticPool) else contextlib.nullcontext()
        self._setup_lock = threading.Lock()
        self._is_setup = False

    def setup(self) -> None:
        """Create the tables if they do not exist (safe to call repeatedly and
        from several processes at once)."""
        with self._setup_lock:
            if self._is_setup:
                return
            with self._lock, self.engine.begin() as conn:
                create_tables(conn, self.tables.sorted_tables, self.setup_lock_key)
            self._is_setup = True

    def close(self) -> None:
        """Dispose the engine if this object created it."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Connection]:
        if not self._is_setup:
            self.setup()
        with self._lock, self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        if not self._is_setup:
            self.setup()
        with self._lock, self.engine.begin() as conn:
            yield conn


def retry_on_disconnect(method: Callable) -> Callable:
    """Run a store operation again, once, when its connection turned out to
    be dead (SQLAlchemy then invalidates the pool, so the retry connects
    afresh). Every operation is one transaction and idempotent."""

    @functools.wraps(method)
    def retrying(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sa.exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return method(self, *args, **kwargs)

    return retrying
