"""Every test that takes ``make_store`` runs against the memory store,
in-memory SQLite, file SQLite and Postgres (a real server,
``LGDIST_TEST_POSTGRES_URL``; down is an error, never a skip).

Tests keep apart on Postgres by naming ``root``, a namespace label
unique to the test, whose rows are deleted afterwards."""

from __future__ import annotations

import os
import uuid
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa

from lgdist.store.indexed import IndexedStore
from lgdist.store.memory import InMemoryStore
from lgdist.store.postgres import PostgresStore
from lgdist.store.sql import SQLStore, items_table, vectors_table
from lgdist.store.sqlite import SqliteStore

POSTGRES_URL = os.environ.get(
    "LGDIST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test?connect_timeout=5"
)

KINDS = ["memory", "sqlite_memory", "sqlite_file", pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture
def root() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(kind: str, tmp_path: Any, root: str) -> Iterator[Callable[..., IndexedStore]]:
    """``make_store(index=..., ttl=...)``: a store of this test's kind; SQL
    stores made by one test share one database."""
    made: list[IndexedStore] = []

    def make(**kwargs: Any) -> IndexedStore:
        store: IndexedStore
        if kind == "memory":
            store = InMemoryStore(**kwargs)
        elif kind == "sqlite_memory":
            shared = made[0].engine if made else "sqlite://"  # type: ignore[attr-defined]
            store = SqliteStore(shared, **kwargs)
        elif kind == "sqlite_file":
            store = SqliteStore.from_conn_string(str(tmp_path / "store.db"), **kwargs)
        else:
            store = PostgresStore.from_conn_string(POSTGRES_URL, **kwargs)
        if isinstance(store, SQLStore):
            store.setup()  # raises (the test errors, not skips) when the server is down
        made.append(store)
        return store

    yield make
    for store in made:
        if isinstance(store, SQLStore):
            with store.engine.begin() as conn:
                for table in (vectors_table, items_table):
                    conn.execute(sa.delete(table).where(table.c.prefix.contains(root, autoescape=True)))
            store.close()
        else:
            store.stop_ttl_sweeper(timeout=5)


@pytest.fixture
def store(make_store: Callable[..., IndexedStore]) -> IndexedStore:
    return make_store()


class Clock:
    """A store's clock under the test's control (expiry without waiting)."""

    def __init__(self, start: float = 1_900_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += minutes * 60.0


@pytest.fixture
def clock() -> Clock:
    return Clock()
