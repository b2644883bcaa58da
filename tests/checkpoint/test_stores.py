"""Behaviour every checkpoint store shares (memory, SQLite, Postgres), then a
few SQL-only details. Fixtures live in ``conftest.py``."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from lgdist.checkpoint.base import BaseCheckpointSaver
from lgdist.checkpoint.memory import InMemorySaver, MemorySaver
from lgdist.checkpoint.postgres import PostgresSaver
from lgdist.checkpoint.sql import SQLCheckpointSaver, checkpoints_table, writes_table
from lgdist.checkpoint.sqlite import SqliteSaver
from lgdist.errors import SerializationError


def _ids(items) -> list[str]:
    """Checkpoint ids of checkpoint tuples or configs."""
    return [(getattr(i, "config", None) or i)["configurable"]["checkpoint_id"] for i in items]


def _put_chain(saver, config, thread_id, new_checkpoint, n, metadata=lambda i: {"step": i}):
    """Put ``n`` checkpoints, each the parent of the next; returns their configs."""
    configs, parent = [], config(thread_id)
    for i in range(n):
        cp = new_checkpoint({"count": i}, {"count": saver.get_next_version(None if i == 0 else str(i))})
        parent = saver.put(parent, cp, metadata(i), cp["channel_versions"])
        configs.append(parent)
    return configs


# ------------------------------------------------------------ round trips
def test_put_then_get_tuple_round_trips_values_and_metadata(saver, thread_id, config, new_checkpoint):
    values = {
        "messages": [
            HumanMessage("hi", id="1"),
            AIMessage("", id="2", tool_calls=[{"name": "search", "args": {"q": "x"}, "id": "c1"}]),
            ToolMessage("result", tool_call_id="c1", id="3"),
        ],
        "pair": (1, "a"),
        "raw": b"\x00\xff",
        "nested": {1: {"set": {1, 2}}},
    }
    cp = new_checkpoint(values)
    metadata = {"source": "loop", "step": 3, "writes": {"agent": ("tuple",)}}
    stored_config = saver.put(config(thread_id), cp, metadata, cp["channel_versions"])

    tup = saver.get_tuple(stored_config)

    assert tup.config == config(thread_id, cp["id"])
    assert tup.checkpoint == cp
    assert tup.metadata == metadata
    assert type(tup.checkpoint["channel_values"]["messages"][1]) is AIMessage
    assert tup.pending_writes == []


def test_get_tuple_without_checkpoint_id_returns_latest(saver, thread_id, config, new_checkpoint):
    configs = _put_chain(saver, config, thread_id, new_checkpoint, 3)

    latest = saver.get_tuple(config(thread_id))

    assert latest.config == configs[-1]
    assert latest.checkpoint["channel_values"] == {"count": 2}


def test_get_tuple_of_unknown_thread_or_checkpoint_is_none(saver, thread_id, config, new_checkpoint):
    assert saver.get_tuple(config(thread_id)) is None
    _put_chain(saver, config, thread_id, new_checkpoint, 1)
    assert saver.get_tuple(config(thread_id, "no-such-checkpoint")) is None


def test_parent_config_names_the_previous_checkpoint(saver, thread_id, config, new_checkpoint):
    first, second = _put_chain(saver, config, thread_id, new_checkpoint, 2)

    assert saver.get_tuple(first).parent_config is None
    assert saver.get_tuple(second).parent_config == first


def test_mutating_a_returned_checkpoint_does_not_change_history(saver, thread_id, config, new_checkpoint):
    cp = new_checkpoint({"items": [1, 2]})
    stored = saver.put(config(thread_id), cp, {"tags": ["a"]}, cp["channel_versions"])
    cp["channel_values"]["items"].append("mutated input")

    tup = saver.get_tuple(stored)
    tup.checkpoint["channel_values"]["items"].append("mutated output")
    tup.metadata["tags"].append("mutated")

    again = saver.get_tuple(stored)
    assert again.checkpoint["channel_values"] == {"items": [1, 2]}
    assert again.metadata == {"tags": ["a"]}


# ------------------------------------------------------------------ list
def test_list_is_newest_first(saver, thread_id, config, new_checkpoint):
    configs = _put_chain(saver, config, thread_id, new_checkpoint, 4)

    assert _ids(saver.list(config(thread_id))) == _ids(reversed(configs))


def test_list_before_and_limit_page_through_history(saver, thread_id, config, new_checkpoint):
    c0, c1, c2, c3 = _put_chain(saver, config, thread_id, new_checkpoint, 4)

    assert _ids(saver.list(config(thread_id), before=c2)) == _ids([c1, c0])
    assert _ids(saver.list(config(thread_id), limit=2)) == _ids([c3, c2])
    assert _ids(saver.list(config(thread_id), before=c3, limit=1)) == _ids([c2])


def test_list_filter_matches_metadata_by_equality(saver, thread_id, config, new_checkpoint):
    configs = _put_chain(
        saver, config, thread_id, new_checkpoint, 5, metadata=lambda i: {"source": "loop" if i % 2 else "input", "step": i}
    )

    found = saver.list(config(thread_id), filter={"source": "loop"})
    assert _ids(found) == _ids([configs[3], configs[1]])
    assert _ids(saver.list(config(thread_id), filter={"source": "input"}, limit=2)) == _ids([configs[4], configs[2]])
    assert list(saver.list(config(thread_id), filter={"source": "nope"})) == []


def test_list_without_config_lists_every_thread(saver, thread_ids, config, new_checkpoint):
    marker = thread_ids()  # unique value, so other tests' threads are filtered out
    a, b = thread_ids(), thread_ids()
    (ca,) = _put_chain(saver, config, a, new_checkpoint, 1, metadata=lambda i: {"run": marker})
    (cb,) = _put_chain(saver, config, b, new_checkpoint, 1, metadata=lambda i: {"run": marker})

    found = list(saver.list(None, filter={"run": marker}))

    assert _ids(found) == _ids([cb, ca])  # newest first across threads
    assert {t.config["configurable"]["thread_id"] for t in found} == {a, b}


def test_list_loads_values_and_pending_writes(saver, thread_id, config, new_checkpoint):
    first, second = _put_chain(saver, config, thread_id, new_checkpoint, 2)
    saver.put_writes(first, [("count", 10)], "task-1")

    newest, oldest = saver.list(config(thread_id))

    assert newest.checkpoint["channel_values"] == {"count": 1}
    assert oldest.checkpoint["channel_values"] == {"count": 0}
    assert oldest.pending_writes == [("task-1", "count", 10)]
    assert newest.pending_writes == []


# ----------------------------------------------------------------- blobs
def test_only_channels_in_new_versions_write_blobs(saver, thread_id, config, new_checkpoint, count_blobs):
    v1 = saver.get_next_version(None)
    cp1 = new_checkpoint({"a": {"big": 1}, "b": [1]}, {"a": v1, "b": v1})
    c1 = saver.put(config(thread_id), cp1, {}, {"a": v1, "b": v1})
    assert count_blobs(thread_id) == 2

    v2 = saver.get_next_version(v1)
    cp2 = new_checkpoint({"a": {"big": 1}, "b": [2]}, {"a": v1, "b": v2})
    c2 = saver.put(c1, cp2, {}, {"b": v2})

    assert count_blobs(thread_id) == 3  # "a" was not rewritten
    assert saver.get_tuple(c2).checkpoint["channel_values"] == {"a": {"big": 1}, "b": [2]}
    assert saver.get_tuple(c1).checkpoint["channel_values"] == {"a": {"big": 1}, "b": [1]}


@pytest.mark.parametrize(
    "saver", ["sqlite_memory", "sqlite_file", pytest.param("postgres", marks=pytest.mark.integration)], indirect=True
)
def test_small_primitive_values_live_in_the_checkpoint_row(saver, thread_id, config, new_checkpoint, count_blobs):
    from lgdist.checkpoint.blob_cache import CACHE

    v1 = saver.get_next_version(None)
    values = {"n": 1, "x": 1.5, "flag": True, "none": None, "name": "short", "long": "y" * 300}
    cp1 = new_checkpoint(values, {c: v1 for c in values})
    c1 = saver.put(config(thread_id), cp1, {}, {c: v1 for c in values})
    assert count_blobs(thread_id) == 1  # only the long string
    v2 = saver.get_next_version(v1)
    cp2 = new_checkpoint({**values, "n": 2}, {**{c: v1 for c in values}, "n": v2})
    c2 = saver.put(c1, cp2, {}, {"n": v2})
    assert count_blobs(thread_id) == 1
    CACHE.clear()  # read from the store, not from this process's cache
    for stored, expected in ((c1, values), (c2, {**values, "n": 2})):
        got = saver.get_tuple(stored).checkpoint["channel_values"]
        assert got == expected and {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}


def test_channel_with_a_version_but_no_value_is_absent_from_channel_values(saver, thread_id, config, new_checkpoint):
    cp = new_checkpoint({"a": 1}, {"a": "1", "cleared": "2"})
    stored = saver.put(config(thread_id), cp, {}, {"a": "1", "cleared": "2"})

    tup = saver.get_tuple(stored)

    assert tup.checkpoint["channel_values"] == {"a": 1}
    assert tup.checkpoint["channel_versions"] == {"a": "1", "cleared": "2"}


def test_branches_forked_from_one_checkpoint_do_not_clobber_each_other(saver, thread_id, config, new_checkpoint):
    v1 = saver.get_next_version(None)
    root = saver.put(config(thread_id), new_checkpoint({"x": "root"}, {"x": v1}), {}, {"x": v1})
    # Both branches bump "x" from the same version; the random suffix keeps
    # their blob keys apart.
    va, vb = saver.get_next_version(v1), saver.get_next_version(v1)
    branch_a = saver.put(root, new_checkpoint({"x": "a"}, {"x": va}), {}, {"x": va})
    branch_b = saver.put(root, new_checkpoint({"x": "b"}, {"x": vb}), {}, {"x": vb})

    assert saver.get_tuple(branch_a).checkpoint["channel_values"] == {"x": "a"}
    assert saver.get_tuple(branch_b).checkpoint["channel_values"] == {"x": "b"}
    assert saver.get_tuple(branch_a).parent_config == saver.get_tuple(branch_b).parent_config == root


# ---------------------------------------------------------- pending writes
def test_same_task_writing_twice_keeps_the_first_writes(saver, thread_id, config, new_checkpoint):
    (stored,) = _put_chain(saver, config, thread_id, new_checkpoint, 1)

    saver.put_writes(stored, [("a", 1), ("b", 2)], "task-1")
    saver.put_writes(stored, [("a", 100), ("b", 200)], "task-1")  # redelivered task

    assert saver.get_tuple(stored).pending_writes == [("task-1", "a", 1), ("task-1", "b", 2)]


def test_special_channel_write_replaces_the_previous_one(saver, thread_id, config, new_checkpoint):
    (stored,) = _put_chain(saver, config, thread_id, new_checkpoint, 1)

    saver.put_writes(stored, [("__error__", "first failure")], "task-1")
    saver.put_writes(stored, [("__error__", "second failure")], "task-1")

    assert saver.get_tuple(stored).pending_writes == [("task-1", "__error__", "second failure")]


def test_pending_writes_are_ordered_by_task_then_index(saver, thread_id, config, new_checkpoint):
    (stored,) = _put_chain(saver, config, thread_id, new_checkpoint, 1)

    saver.put_writes(stored, [("x", "b0"), ("y", "b1")], "task-b")
    saver.put_writes(stored, [("x", "a0"), ("__interrupt__", "stop")], "task-a")

    assert saver.get_tuple(stored).pending_writes == [
        ("task-a", "__interrupt__", "stop"),  # special channels have negative idx
        ("task-a", "x", "a0"),
        ("task-b", "x", "b0"),
        ("task-b", "y", "b1"),
    ]


def test_writes_belong_to_their_checkpoint(saver, thread_id, config, new_checkpoint):
    first, second = _put_chain(saver, config, thread_id, new_checkpoint, 2)
    saver.put_writes(first, [("a", 1)], "task-1")

    assert saver.get_tuple(first).pending_writes == [("task-1", "a", 1)]
    assert saver.get_tuple(second).pending_writes == []


# ------------------------------------------------------------ idempotency
def test_second_put_with_same_idempotency_key_returns_none_and_stores_nothing(
    saver, thread_id, config, new_checkpoint, count_blobs
):
    (root,) = _put_chain(saver, config, thread_id, new_checkpoint, 1)
    v = saver.get_next_version("1")
    first = new_checkpoint({"count": 1}, {"count": v})
    assert saver.put(root, first, {"step": 1}, {"count": v}, idempotency_key="step-1") == config(thread_id, first["id"])
    blobs_before = count_blobs(thread_id)

    v_dup = saver.get_next_version("1")
    duplicate = new_checkpoint({"count": 999}, {"count": v_dup})
    assert saver.put(root, duplicate, {"step": 1}, {"count": v_dup}, idempotency_key="step-1") is None

    assert count_blobs(thread_id) == blobs_before
    assert saver.get_tuple(config(thread_id, duplicate["id"])) is None
    assert saver.get_tuple(config(thread_id)).checkpoint == first


def test_idempotency_keys_are_scoped_to_their_thread(saver, thread_ids, config, new_checkpoint):
    a, b = thread_ids(), thread_ids()
    cp_a, cp_b = new_checkpoint(), new_checkpoint()

    assert saver.put(config(a), cp_a, {}, {}, idempotency_key="step-1") is not None
    assert saver.put(config(b), cp_b, {}, {}, idempotency_key="step-1") is not None


def test_concurrent_puts_with_one_idempotency_key_store_exactly_one(saver, thread_id, config, new_checkpoint):
    candidates = [new_checkpoint({"n": i}) for i in range(8)]
    barrier = threading.Barrier(len(candidates))

    def put(cp):
        barrier.wait()
        return saver.put(config(thread_id), cp, {}, cp["channel_versions"], idempotency_key="finish-step-3")

    with ThreadPoolExecutor(len(candidates)) as pool:
        results = list(pool.map(put, candidates))

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert _ids(saver.list(config(thread_id))) == _ids(winners)


# -------------------------------------------------------- errors, isolation
def test_non_serializable_channel_value_error_names_the_key_and_stores_nothing(
    saver, thread_id, config, new_checkpoint
):
    cp = new_checkpoint({"ok": 1, "lock": threading.Lock()})

    with pytest.raises(SerializationError, match=r"'lock'.*type lock"):
        saver.put(config(thread_id), cp, {}, cp["channel_versions"])

    assert saver.get_tuple(config(thread_id)) is None


def test_non_serializable_pending_write_error_names_the_channel(saver, thread_id, config, new_checkpoint):
    (stored,) = _put_chain(saver, config, thread_id, new_checkpoint, 1)

    with pytest.raises(SerializationError, match="'handle'"):
        saver.put_writes(stored, [("fine", 1), ("handle", object())], "task-1")

    assert saver.get_tuple(stored).pending_writes == []


def test_threads_are_isolated(saver, thread_ids, config, new_checkpoint):
    a, b = thread_ids(), thread_ids()
    (ca,) = _put_chain(saver, config, a, new_checkpoint, 1)
    saver.put_writes(ca, [("x", 1)], "task-1")

    assert saver.get_tuple(config(b)) is None
    assert list(saver.list(config(b))) == []
    assert saver.get_tuple(config(b, ca["configurable"]["checkpoint_id"])) is None


def test_namespaces_are_separate_histories(saver, thread_id, config, new_checkpoint):
    root = saver.put(config(thread_id), new_checkpoint({"v": "root"}), {}, {"v": "1"})
    sub = saver.put(config(thread_id, ns="child:1"), new_checkpoint({"v": "sub"}), {}, {"v": "1"})

    assert saver.get_tuple(config(thread_id)).config == root
    assert saver.get_tuple(config(thread_id, ns="child:1")).checkpoint["channel_values"] == {"v": "sub"}
    assert _ids(saver.list(config(thread_id, ns="child:1"))) == _ids([sub])


def test_delete_thread_removes_checkpoints_blobs_and_writes(saver, thread_ids, config, new_checkpoint, count_blobs):
    doomed, kept = thread_ids(), thread_ids()
    cp = new_checkpoint({"a": 1})
    stored = saver.put(config(doomed), cp, {}, cp["channel_versions"], idempotency_key="k")
    saver.put_writes(stored, [("x", 1)], "task-1")
    _put_chain(saver, config, kept, new_checkpoint, 1)

    saver.delete_thread(doomed)

    assert saver.get_tuple(config(doomed)) is None
    assert count_blobs(doomed) == 0
    assert saver.get_tuple(config(kept)) is not None
    # Re-creating the same checkpoint (same key) works and finds no leftover writes.
    assert saver.put(config(doomed), cp, {}, cp["channel_versions"], idempotency_key="k") == stored
    assert saver.get_tuple(stored).pending_writes == []


def test_puts_from_many_threads_are_all_stored(saver, thread_ids, config, new_checkpoint):
    threads = [thread_ids() for _ in range(6)]

    def run(thread_id):
        _put_chain(saver, config, thread_id, new_checkpoint, 5)

    with ThreadPoolExecutor(len(threads)) as pool:
        list(pool.map(run, threads))

    for thread_id in threads:
        assert len(list(saver.list(config(thread_id)))) == 5


# ---------------------------------------------------------------- async
@pytest.mark.asyncio
async def test_async_twins_match_the_sync_methods(saver, thread_id, config, new_checkpoint):
    first = await saver.aput(config(thread_id), new_checkpoint({"a": 1}), {"step": 0}, {"a": "1"})
    await saver.aput_writes(first, [("a", 2)], "task-1")

    tup = await saver.aget_tuple(config(thread_id))
    listed = [t async for t in saver.alist(config(thread_id))]

    assert tup == saver.get_tuple(config(thread_id))
    assert tup.pending_writes == [("task-1", "a", 2)]
    assert listed == list(saver.list(config(thread_id)))
    assert (await saver.aget(first))["channel_values"] == {"a": 1}


# ------------------------------------------------------------- SQL only
def test_memory_saver_is_the_in_memory_saver():
    assert MemorySaver is InMemorySaver
    assert isinstance(InMemorySaver(), BaseCheckpointSaver)


def test_sqlite_from_conn_string_works_directly_and_as_context_manager(tmp_path):
    memory = SqliteSaver.from_conn_string(":memory:")
    memory.put({"configurable": {"thread_id": "t"}}, {"v": 1, "id": "1", "channel_values": {}}, {}, {})
    assert memory.get_tuple({"configurable": {"thread_id": "t"}}) is not None

    with SqliteSaver.from_conn_string(str(tmp_path / "x.db")) as saver:
        assert isinstance(saver, SqliteSaver)
        saver.put({"configurable": {"thread_id": "t"}}, {"v": 1, "id": "1", "channel_values": {}}, {}, {})
    with SqliteSaver.from_conn_string(f"sqlite:///{tmp_path / 'x.db'}") as reopened:
        assert reopened.get_tuple({"configurable": {"thread_id": "t"}}) is not None


def test_in_memory_sqlite_is_shared_by_all_threads():
    saver = SqliteSaver.from_conn_string(":memory:")
    cfg = {"configurable": {"thread_id": "t"}}
    with ThreadPoolExecutor(1) as pool:
        pool.submit(saver.put, cfg, {"v": 1, "id": "1", "channel_values": {}}, {}, {}).result()
    assert saver.get_tuple(cfg) is not None


def test_sqlite_saver_wraps_an_open_sqlite3_connection(tmp_path):
    conn = sqlite3.connect(tmp_path / "c.db", check_same_thread=False)
    saver = SqliteSaver(conn)
    cfg = {"configurable": {"thread_id": "t"}}
    saver.put(cfg, {"v": 1, "id": "1", "channel_values": {"a": 1}, "channel_versions": {"a": "1"}}, {}, {"a": "1"})

    assert saver.get_tuple(cfg).checkpoint["channel_values"] == {"a": 1}
    assert conn.execute("SELECT count(*) FROM lgdist_checkpoints").fetchone() == (1,)


def test_file_sqlite_uses_write_ahead_logging(tmp_path):
    with SqliteSaver.from_conn_string(str(tmp_path / "wal.db")) as saver:
        saver.setup()
        with saver.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_setup_is_idempotent(tmp_path):
    with SqliteSaver.from_conn_string(str(tmp_path / "s.db")) as saver:
        saver.setup()
        saver.setup()
    with SqliteSaver.from_conn_string(str(tmp_path / "s.db")) as again:
        again.setup()
        assert set(sa.inspect(again.engine).get_table_names()) >= {"lgdist_checkpoints", "lgdist_blobs", "lgdist_writes"}


def test_sql_store_rejects_other_databases():
    with pytest.raises(ValueError, match="SQLite or Postgres"):
        SQLCheckpointSaver("mysql://u@localhost/db")


def test_sql_tables_have_the_documented_keys():
    assert [c.name for c in checkpoints_table.primary_key] == ["thread_id", "checkpoint_ns", "checkpoint_id"]
    assert [c.name for c in writes_table.primary_key] == ["thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"]


@pytest.mark.integration
@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://"])
def test_postgres_urls_use_psycopg3(scheme, postgres_url):
    url = postgres_url.replace("postgresql://", scheme)
    with PostgresSaver.from_conn_string(url) as saver:
        assert saver.engine.url.drivername == "postgresql+psycopg"
        assert not saver.engine.pool._pre_ping  # no round trip per checkout
        saver.setup()
        assert saver.get_tuple({"configurable": {"thread_id": "no-such-thread-ever"}}) is None
        # A pooled connection that died (a server restart) costs one retry, not an error.
        with saver.engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with sa.create_engine(saver.engine.url).connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        assert saver.get_tuple({"configurable": {"thread_id": "no-such-thread-ever"}}) is None
