"""Fixtures shared by the checkpoint store tests: every test that takes
``saver`` runs against memory, in-memory SQLite, file SQLite and Postgres.

Postgres is a real server (``POSTGRES_URL``, overridable with
``LGDIST_TEST_POSTGRES_URL``); if it is unreachable those cases
error out - they are never skipped."""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa

from lgdist.checkpoint.base import BaseCheckpointSaver, Checkpoint
from lgdist.checkpoint.memory import InMemorySaver
from lgdist.checkpoint.postgres import PostgresSaver
from lgdist.checkpoint.sql import SQLCheckpointSaver, blobs_table
from lgdist.checkpoint.sqlite import SqliteSaver

POSTGRES_URL = os.environ.get(
    "LGDIST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test?connect_timeout=5"
)


@pytest.fixture(
    params=[
        "memory",
        "sqlite_memory",
        "sqlite_file",
        pytest.param("postgres", marks=pytest.mark.integration),
    ]
)
def saver(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[BaseCheckpointSaver]:
    """A fresh store of each kind (Postgres shares one database; tests keep
    apart by using unique thread ids)."""
    kind = request.param
    if kind == "memory":
        yield InMemorySaver()
        return
    if kind == "sqlite_memory":
        store: SQLCheckpointSaver = SqliteSaver.from_conn_string(":memory:")
    elif kind == "sqlite_file":
        store = SqliteSaver.from_conn_string(str(tmp_path / "checkpoints.db"))
    else:
        store = PostgresSaver.from_conn_string(POSTGRES_URL)
    store.setup()  # raises (test errors, not skips) when the server is down
    with store:
        yield store


@pytest.fixture
def thread_ids(saver: BaseCheckpointSaver) -> Iterator[Callable[[], str]]:
    """Make thread ids unique to this test; their data is deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    made: list[str] = []

    def new_thread_id() -> str:
        made.append(f"{prefix}-{len(made)}")
        return made[-1]

    yield new_thread_id
    for thread_id in made:
        saver.delete_thread(thread_id)


@pytest.fixture
def thread_id(thread_ids: Callable[[], str]) -> str:
    return thread_ids()


@pytest.fixture
def new_checkpoint() -> Callable[..., Checkpoint]:
    """Build checkpoints with increasing (time-ordered) ids, as the engine does."""
    counter = itertools.count(1)

    def make(
        values: dict[str, Any] | None = None,
        versions: dict[str, str] | None = None,
        **extra: Any,
    ) -> Checkpoint:
        values = values or {}
        checkpoint: Checkpoint = {
            "v": 1,
            "id": f"{next(counter):08d}-{uuid.uuid4().hex[:8]}",
            "ts": "2024-01-01T00:00:00+00:00",
            "channel_values": values,
            "channel_versions": versions if versions is not None else {k: "1" for k in values},
            "versions_seen": {},
            "updated_channels": sorted(values),
        }
        checkpoint.update(extra)  # type: ignore[typeddict-item]
        return checkpoint

    return make


@pytest.fixture
def count_blobs(saver: BaseCheckpointSaver) -> Callable[[str], int]:
    """How many channel-version blobs a thread has stored."""

    def count(thread_id: str) -> int:
        if isinstance(saver, InMemorySaver):
            return sum(1 for key in saver._blobs if key[0] == thread_id)
        assert isinstance(saver, SQLCheckpointSaver)
        stmt = sa.select(sa.func.count()).select_from(blobs_table).where(blobs_table.c.thread_id == thread_id)
        with saver.engine.connect() as conn:
            return conn.execute(stmt).scalar_one()

    return count


def config_for(thread_id: str, checkpoint_id: str | None = None, ns: str = "") -> dict:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ns}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


@pytest.fixture
def postgres_url() -> str:
    return POSTGRES_URL


@pytest.fixture
def config() -> Callable[..., dict]:
    """``config(thread_id, checkpoint_id=None, ns="")`` -> a RunnableConfig."""
    return config_for


@pytest.fixture
def blob_rows(saver: BaseCheckpointSaver) -> Callable[[str], dict[tuple[str, str], tuple[Any, int]]]:
    """A thread's stored blob rows: (channel, version) -> (base version of a
    delta or None, size of the stored bytes)."""

    def rows(thread_id: str) -> dict[tuple[str, str], tuple[Any, int]]:
        if isinstance(saver, InMemorySaver):
            return {
                (key[2], key[3]): (base, len(blob or b""))
                for key, (_type, blob, base) in saver._blobs.items()
                if key[0] == thread_id
            }
        assert isinstance(saver, SQLCheckpointSaver)
        bl = blobs_table
        stmt = sa.select(bl.c.channel, bl.c.version, bl.c.base_version, bl.c.blob).where(bl.c.thread_id == thread_id)
        with saver.engine.connect() as conn:
            return {(r.channel, r.version): (r.base_version, len(r.blob or b"")) for r in conn.execute(stmt)}

    return rows

