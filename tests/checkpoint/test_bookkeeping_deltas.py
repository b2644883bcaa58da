"""Checkpoint rows of the local runtime store only what a step changed in
``channel_versions`` / ``versions_seen`` (lgdist.checkpoint.bookkeeping);
every reader — a fresh store with nothing remembered, ``list``, a fork —
still sees whole checkpoints."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from lgdist.checkpoint.bookkeeping import DELTA_LIMIT
from lgdist.checkpoint.postgres import PostgresSaver
from lgdist.checkpoint.sqlite import SqliteSaver
from tests.conftest import POSTGRES_URL


@pytest.fixture(params=["sqlite_file", pytest.param("postgres", marks=pytest.mark.integration)])
def open_store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A function giving a new store on one database (a fresh store
    remembers nothing of what another wrote)."""
    opened: list = []

    def open_() -> Any:
        if request.param == "sqlite_file":
            store: Any = SqliteSaver.from_conn_string(str(tmp_path / "cp.db"))
        else:
            store = PostgresSaver.from_conn_string(POSTGRES_URL)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def _checkpoint(i: int, nodes: int = 40) -> dict:
    """Step i of a chain over ``nodes`` nodes: every trigger written so far
    keeps its version, node i-1 saw its trigger."""
    versions = {f"branch:to:n{k}": f"{k + 1:032}.{k:016x}" for k in range(min(i, nodes))}
    versions["n"] = f"{i + 100:032}.{i:016x}"
    seen = {f"n{k}": {f"branch:to:n{k}": versions[f"branch:to:n{k}"]} for k in range(min(i, nodes))}
    return {"v": 1, "id": f"{i:08d}", "ts": "t", "channel_values": {"n": i}, "channel_versions": versions,
            "versions_seen": seen, "updated_channels": ["n"]}  # fmt: skip


def _put_chain(store: Any, thread_id: str, steps: int, **kwargs: Any) -> list[dict]:
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    put = []
    for i in range(steps):
        cp = _checkpoint(i)
        config = store.put(config, cp, {"step": i}, {"n": cp["channel_versions"]["n"]}, **kwargs)
        put.append(cp)
    return put


def _rows(store: Any, thread_id: str) -> dict[str, dict]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT checkpoint_id, checkpoint FROM lgdist_checkpoints WHERE thread_id = :t"), {"t": thread_id}
        )
        return {cid: json.loads(text) for cid, text in rows}


def _whole(cp: dict) -> tuple:
    return cp["channel_versions"], cp["versions_seen"]


def test_a_chain_stores_deltas_and_a_whole_row_every_delta_limit_rows(open_store):
    store, thread_id = open_store(), f"t-{uuid.uuid4().hex[:8]}"
    _put_chain(store, thread_id, 2 * DELTA_LIMIT + 3)
    rows = _rows(store, thread_id)
    whole = sorted(cid for cid, body in rows.items() if "delta" not in body)
    assert whole == [f"{i:08d}" for i in (0, DELTA_LIMIT, 2 * DELTA_LIMIT)]
    late = rows[f"{DELTA_LIMIT + 2:08d}"]
    assert late["delta"] == {"base": f"{DELTA_LIMIT + 1:08d}", "depth": 2}
    assert len(late["channel_versions"]) == 2 and len(late["versions_seen"]) == 1  # n and the new trigger


def test_a_fresh_store_reads_every_row_whole(open_store):
    writer, thread_id = open_store(), f"t-{uuid.uuid4().hex[:8]}"
    put = _put_chain(writer, thread_id, DELTA_LIMIT + 5)
    for i in (1, DELTA_LIMIT - 1, DELTA_LIMIT + 4):
        reader = open_store()  # remembers nothing: rebuilds from the chain of rows
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": f"{i:08d}"}}
        assert _whole(reader.get_tuple(config).checkpoint) == _whole(put[i])
    listed = list(open_store().list({"configurable": {"thread_id": thread_id}}))
    assert [_whole(t.checkpoint) for t in listed] == [_whole(cp) for cp in reversed(put)]


def test_a_returned_checkpoint_is_the_callers_own(open_store):
    store, thread_id = open_store(), f"t-{uuid.uuid4().hex[:8]}"
    put = _put_chain(store, thread_id, 5)
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    got = store.get_tuple(config).checkpoint
    got["channel_versions"]["n"] = "changed"
    got["versions_seen"]["n1"]["branch:to:n1"] = "changed"
    assert _whole(store.get_tuple(config).checkpoint) == _whole(put[-1])


def test_forks_of_one_checkpoint_are_deltas_of_it(open_store):
    store, thread_id = open_store(), f"t-{uuid.uuid4().hex[:8]}"
    put = _put_chain(store, thread_id, 4)
    parent = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": put[-1]["id"]}}
    forks = []
    for suffix in ("a", "b"):
        cp = _checkpoint(4)
        cp["id"] = f"00000004{suffix}"
        cp["channel_versions"]["n"] = f"{999:032}.{suffix}"
        store.put(parent, cp, {"step": 4}, {"n": cp["channel_versions"]["n"]})
        forks.append(cp)
    reader = open_store()
    for cp in forks:
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": cp["id"]}}
        assert _whole(reader.get_tuple(config).checkpoint) == _whole(cp)
    assert all("delta" in _rows(store, thread_id)[cp["id"]] for cp in forks)


def test_rows_stored_with_an_idempotency_key_are_whole(open_store):
    store, thread_id = open_store(), f"t-{uuid.uuid4().hex[:8]}"
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    for i in range(3):
        cp = _checkpoint(i)
        config = store.put(config, cp, {"step": i}, {"n": cp["channel_versions"]["n"]}, idempotency_key=f"step:{i}")
    assert all("delta" not in body for body in _rows(store, thread_id).values())


def test_a_checkpoint_that_drops_a_version_is_stored_whole(open_store):
    store, thread_id = open_store(), f"t-{uuid.uuid4().hex[:8]}"
    put = _put_chain(store, thread_id, 3)
    cp = _checkpoint(3)
    del cp["channel_versions"]["branch:to:n0"]
    parent = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": put[-1]["id"]}}
    store.put(parent, cp, {"step": 3}, {})
    assert "delta" not in _rows(store, thread_id)[cp["id"]]
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": cp["id"]}}
    assert _whole(open_store().get_tuple(config).checkpoint) == _whole(cp)
