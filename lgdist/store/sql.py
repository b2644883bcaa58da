"""The long-term memory store over SQLAlchemy Core, for SQLite and Postgres,
in the same database as the checkpoints (same engine setup, same table
setup; see :mod:`lgdist.checkpoint.sql`).

Two tables:

* ``lgdist_store`` - one row per item: ``prefix`` is the namespace's labels
  joined by ``.`` (labels cannot hold one), ``value`` tagged JSON, times as
  Unix seconds, ``ttl_minutes`` / ``expires_at`` for expiry.
* ``lgdist_store_vectors`` - one row per embedded field of an item, the
  vector as a JSON list.

Namespace prefixes, expiry and (without a filter or query) paging run in
SQL; filters and similarity are computed in Python over the prefix's rows
with the same code as :class:`~lgdist.store.memory.InMemoryStore`, so both
agree on every search. Fine for memories per user or per assistant; a
collection of millions of vectors wants a vector index this store lacks.
Searches without a query list the most recently updated items first, as
LangGraph's SQL stores do.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Optional, Union

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from lgdist import serde
from lgdist.checkpoint.sql_schema import SortedText, SQLDatabase, dialect_insert
from lgdist.store.base import GetOp, IndexConfig, Item, ListNamespacesOp, Op, PutOp, Result, SearchOp, TTLConfig
from lgdist.store.indexed import Embedded, IndexedStore, last_puts
from lgdist.store.matching import matches_filter, page, rank, select_namespaces

__all__ = ["SQLStore", "items_table", "vectors_table"]

metadata_obj = sa.MetaData()

items_table = sa.Table(
    "lgdist_store",
    metadata_obj,
    sa.Column("prefix", SortedText, primary_key=True),
    sa.Column("key", SortedText, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("ttl_minutes", sa.Float, nullable=True),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Index("lgdist_store_expires_at", "expires_at"),
)

vectors_table = sa.Table(
    "lgdist_store_vectors",
    metadata_obj,
    sa.Column("prefix", SortedText, primary_key=True),
    sa.Column("key", SortedText, primary_key=True),
    sa.Column("field_name", SortedText, primary_key=True),
    sa.Column("embedding", sa.Text, nullable=False),
)

_SETUP_LOCK_KEY = 0x6C676469737432  # pg advisory lock id serializing setup()
_IN_BATCH = 500


def _prefix_text(namespace: tuple[str, ...]) -> str:
    return ".".join(namespace)


def _namespace(prefix: str) -> tuple[str, ...]:
    return tuple(prefix.split("."))


def _datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def _under(column: Any, namespace: tuple[str, ...]) -> Any:
    """``column`` names ``namespace`` or a namespace below it."""
    if not namespace:
        return sa.true()
    text = _prefix_text(namespace)
    return sa.or_(column == text, column.startswith(text + ".", autoescape=True))


class SQLStore(SQLDatabase, IndexedStore):
    """The store on SQLite or Postgres: ``SQLStore(url_or_engine, index=...,
    ttl=...)`` with a URL as for :class:`~lgdist.checkpoint.sql.SQLCheckpointSaver`
    (``sqlite://``, ``sqlite:///file.db``, ``postgresql://...``) or an engine,
    e.g. a checkpoint saver's ``engine`` to share its connections. Tables are
    created on first use (or by :meth:`setup`)."""

    def __init__(
        self,
        url_or_engine: Union[str, Engine],
        *,
        index: Optional[IndexConfig] = None,
        ttl: Optional[TTLConfig] = None,
    ) -> None:
        IndexedStore.__init__(self, index=index, ttl=ttl)
        SQLDatabase.__init__(self, url_or_engine)
        insert = dialect_insert(self.engine.dialect.name)
        ins = insert(items_table)
        # created_at stays what the first put set; the rest is the new put's.
        self._upsert_item = ins.on_conflict_do_update(
            index_elements=[items_table.c.prefix, items_table.c.key],
            set_={name: ins.excluded[name] for name in ("value", "updated_at", "ttl_minutes", "expires_at")},
        )
        self._insert_vectors = insert(vectors_table).on_conflict_do_nothing()

    tables = metadata_obj
    setup_lock_key = _SETUP_LOCK_KEY

    def close(self) -> None:
        """Stop the ttl sweeper; dispose the engine if this store created it."""
        self.stop_ttl_sweeper(timeout=5)
        SQLDatabase.close(self)

    # -------------------------------------------------------------- batch
    def _execute(self, ops: list[Op], embedded: Embedded) -> list[Result]:
        now = self._now()
        puts = last_puts(ops)
        touched: list = []  # rows read whose expiry a read pushes back
        # Reads first, in a read-only transaction; then every write in one
        # transaction. (A SQLite transaction that reads before it writes
        # cannot always upgrade to a write lock under concurrent writers.)
        results: list[Result] = [None] * len(ops)
        if any(not isinstance(op, PutOp) for op in ops):
            with self._connection() as conn:
                results = [self._read(conn, op, embedded, now, touched) for op in ops]
        if touched or puts:
            with self._transaction() as conn:
                self._touch(conn, touched, now)
                for (namespace, key), op in puts.items():
                    self._write(conn, namespace, key, op.value, op.ttl, embedded.fields.get((namespace, key)), now)
        return results

    def _live(self) -> Any:
        if not self._omit_expired:
            return sa.true()
        return sa.or_(items_table.c.expires_at.is_(None), items_table.c.expires_at > sa.bindparam("now"))

    def _read(self, conn: Connection, op: Op, embedded: Embedded, now: float, touched: list) -> Result:
        it = items_table
        if isinstance(op, GetOp):
            stmt = sa.select(it).where(it.c.prefix == _prefix_text(op.namespace), it.c.key == op.key, self._live())
            row = conn.execute(stmt, {"now": now}).first()
            if row is None:
                return None
            if op.refresh_ttl and row.ttl_minutes is not None:
                touched.append(row)
            return self._item(row)
        if isinstance(op, SearchOp):
            return self._search(conn, op, embedded, now, touched)
        if isinstance(op, ListNamespacesOp):
            rows = conn.execute(sa.select(it.c.prefix).distinct().where(self._live()), {"now": now})
            return select_namespaces([_namespace(r.prefix) for r in rows], op)
        return None  # a put: applied after the reads

    def _search(self, conn: Connection, op: SearchOp, embedded: Embedded, now: float, touched: list) -> list:
        it = items_table
        query_vector = embedded.queries.get(op.query) if op.query else None
        stmt = (
            sa.select(it)
            .where(_under(it.c.prefix, op.namespace_prefix), self._live())
            .order_by(it.c.updated_at.desc(), it.c.prefix, it.c.key)
        )
        in_sql = not op.filter and query_vector is None
        if in_sql:
            stmt = stmt.limit(op.limit).offset(op.offset)
        rows = [r for r in conn.execute(stmt, {"now": now}) if in_sql or matches_filter(serde.loads(r.value), op.filter)]
        items = [self._item(r) for r in rows]
        if in_sql:
            found = page(items, len(items), 0)
        elif query_vector is None:
            found = page(items, op.limit, op.offset)
        else:
            vectors = self._vectors(conn, op.namespace_prefix)
            found = rank([(i, vectors.get((i.namespace, i.key), [])) for i in items], query_vector, op.limit, op.offset)
        if op.refresh_ttl:
            returned = {(f.namespace, f.key) for f in found}
            touched.extend(r for r in rows if r.ttl_minutes is not None and (_namespace(r.prefix), r.key) in returned)
        return found

    def _vectors(self, conn: Connection, namespace: tuple[str, ...]) -> dict[tuple[tuple[str, ...], str], list]:
        vt = vectors_table
        out: dict[tuple[tuple[str, ...], str], list] = {}
        for row in conn.execute(sa.select(vt).where(_under(vt.c.prefix, namespace))):
            out.setdefault((_namespace(row.prefix), row.key), []).append(json.loads(row.embedding))
        return out

    def _touch(self, conn: Connection, rows: list, now: float) -> None:
        """Push back the expiry of the items just read (those with a ttl)."""
        params = [{"p": r.prefix, "k": r.key, "exp": self._expiry(r.ttl_minutes, now)} for r in rows if r.ttl_minutes is not None]
        if params:
            it = items_table
            stmt = (
                sa.update(it)
                .where(it.c.prefix == sa.bindparam("p"), it.c.key == sa.bindparam("k"))
                .values(expires_at=sa.bindparam("exp"))
            )
            conn.execute(stmt, params)

    def _write(self, conn: Connection, namespace: tuple[str, ...], key: str, value: Any,
               ttl: Optional[float], vectors: Optional[dict[str, list[float]]], now: float) -> None:  # fmt: skip
        prefix = _prefix_text(namespace)
        it, vt = items_table, vectors_table
        # A put replaces the item's vectors: fields it no longer indexes must not match.
        conn.execute(sa.delete(vt).where(vt.c.prefix == prefix, vt.c.key == key))
        if value is None:
            conn.execute(sa.delete(it).where(it.c.prefix == prefix, it.c.key == key))
            return
        row = {"prefix": prefix, "key": key, "value": serde.dumps(dict(value)).decode(), "created_at": now,
               "updated_at": now, "ttl_minutes": ttl, "expires_at": self._expiry(ttl, now)}  # fmt: skip
        conn.execute(self._upsert_item, row)
        if vectors:
            rows = [{"prefix": prefix, "key": key, "field_name": path, "embedding": json.dumps(vector)}
                    for path, vector in vectors.items()]  # fmt: skip
            conn.execute(self._insert_vectors, rows)

    @staticmethod
    def _item(row: Any) -> Item:
        return Item(
            value=serde.loads(row.value),
            key=row.key,
            namespace=_namespace(row.prefix),
            created_at=_datetime(row.created_at),
            updated_at=_datetime(row.updated_at),
        )

    # -------------------------------------------------------------- expiry
    def sweep_ttl(self) -> int:
        it, vt = items_table, vectors_table
        with self._transaction() as conn:
            expired = sa.and_(it.c.expires_at.is_not(None), it.c.expires_at <= self._now())
            keys = conn.execute(sa.select(it.c.prefix, it.c.key).where(expired)).all()
            for start in range(0, len(keys), _IN_BATCH):
                part = [tuple(k) for k in keys[start : start + _IN_BATCH]]
                conn.execute(sa.delete(vt).where(sa.tuple_(vt.c.prefix, vt.c.key).in_(part)))
                conn.execute(sa.delete(it).where(sa.tuple_(it.c.prefix, it.c.key).in_(part)))
        return len(keys)
