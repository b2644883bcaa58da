"""The memory store's API on every kind of store (memory, SQLite, Postgres):
items, searches, listings, semantic search, batches, async twins, expiry."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

from lgdist.errors import InvalidNamespaceError, LgdistError
from lgdist.store.base import GetOp, PutOp, SearchOp
from lgdist.store.indexed import IndexedStore
from lgdist.store.memory import InMemoryStore
from lgdist.testing import WordHashEmbeddings



def keys(found: list) -> list[str]:
    return [item.key for item in found]


def test_put_get_update_keeps_created_at(store: IndexedStore, root: str) -> None:
    store.put((root, "ada"), "m1", {"text": "likes tea", "n": 1})
    first = store.get((root, "ada"), "m1")
    assert first is not None and first.value == {"text": "likes tea", "n": 1}
    assert first.namespace == (root, "ada") and first.key == "m1"
    assert first.created_at.tzinfo is not None
    store.put((root, "ada"), "m1", {"text": "likes oolong"})
    second = store.get((root, "ada"), "m1")
    assert second.value == {"text": "likes oolong"}
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    assert store.get((root, "ada"), "missing") is None
    assert store.get((root, "nobody"), "m1") is None


def test_values_keep_their_types(store: IndexedStore, root: str) -> None:
    value = {"s": "x", "i": 3, "f": 1.5, "b": True, "none": None, "list": [1, "a", {"x": [2]}], "nested": {"k": {"z": 1}}}
    store.put((root,), "k", value)
    assert store.get((root,), "k").value == value


def test_delete_removes_item_and_is_idempotent(store: IndexedStore, root: str) -> None:
    store.put((root,), "k", {"v": 1})
    store.delete((root,), "k")
    store.delete((root,), "k")
    assert store.get((root,), "k") is None
    assert store.search((root,)) == []
    assert store.list_namespaces(prefix=(root,)) == []


def test_search_by_prefix_filter_and_paging(store: IndexedStore, root: str) -> None:
    store.put((root, "ada", "mem"), "a1", {"kind": "pref", "n": 1, "meta": {"p": "high"}})
    store.put((root, "ada", "mem"), "a2", {"kind": "fact", "n": 2, "tags": ["x", "y"]})
    store.put((root, "bob", "mem"), "b1", {"kind": "pref", "n": 3})
    store.put((root + "x", "ada"), "other-root", {"kind": "pref", "n": 4})  # not under root
    assert sorted(keys(store.search((root,)))) == ["a1", "a2", "b1"]
    assert sorted(keys(store.search((root, "ada")))) == ["a1", "a2"]
    assert sorted(keys(store.search((root,), filter={"kind": "pref"}))) == ["a1", "b1"]
    assert sorted(keys(store.search((root,), filter={"n": {"$gte": 2}}))) == ["a2", "b1"]
    assert sorted(keys(store.search((root,), filter={"n": {"$gt": 1, "$lt": 3}}))) == ["a2"]
    assert sorted(keys(store.search((root,), filter={"kind": {"$ne": "pref"}}))) == ["a2"]
    assert keys(store.search((root,), filter={"meta": {"p": "high"}})) == ["a1"]
    assert keys(store.search((root,), filter={"tags": ["x", "y"]})) == ["a2"]
    assert store.search((root,), filter={"kind": "none"}) == []
    every = keys(store.search((root,), limit=10))
    assert keys(store.search((root,), limit=2)) == every[:2]
    assert keys(store.search((root,), limit=2, offset=2)) == every[2:]
    assert keys(store.search((root,), filter={"kind": "pref"}, limit=1, offset=1)) == keys(
        store.search((root,), filter={"kind": "pref"})
    )[1:]
    assert all(item.score is None for item in store.search((root,)))
    with pytest.raises(ValueError, match=r"\$regex"):
        store.search((root,), filter={"kind": {"$regex": "p"}})


def test_prefix_matches_whole_labels_only(store: IndexedStore, root: str) -> None:
    store.put((root, "a_b"), "k1", {"v": 1})
    store.put((root, "a%"), "k2", {"v": 2})
    store.put((root, "ab"), "k3", {"v": 3})
    assert keys(store.search((root, "a_b"))) == ["k1"]
    assert keys(store.search((root, "a%"))) == ["k2"]
    assert keys(store.search((root, "a"))) == []


def test_search_order_without_query(kind: str, store: IndexedStore, root: str, clock: Any) -> None:
    """Memory: first-put order, as LangGraph's InMemoryStore; SQL: most
    recently updated first, as LangGraph's SQL stores."""
    store._now = clock  # type: ignore[method-assign]
    for key in ("k1", "k2", "k3"):
        clock.advance(1)
        store.put((root,), key, {"v": key})
    clock.advance(1)
    store.put((root,), "k1", {"v": "again"})
    expected = ["k1", "k2", "k3"] if kind == "memory" else ["k1", "k3", "k2"]
    assert keys(store.search((root,))) == expected


def test_list_namespaces(store: IndexedStore, root: str) -> None:
    for ns in [("b", "c"), ("b", "d", "e"), ("b", "d", "i"), ("b", "f"), ("c", "f")]:
        store.put((root, *ns), "k", {"v": 1})
    r = root
    assert store.list_namespaces(prefix=(r,)) == [(r, "b", "c"), (r, "b", "d", "e"), (r, "b", "d", "i"), (r, "b", "f"), (r, "c", "f")]
    assert store.list_namespaces(prefix=(r, "b"), max_depth=3) == [(r, "b", "c"), (r, "b", "d"), (r, "b", "f")]
    assert store.list_namespaces(prefix=(r,), suffix=("f",)) == [(r, "b", "f"), (r, "c", "f")]
    assert store.list_namespaces(prefix=(r, "*", "f")) == [(r, "b", "f"), (r, "c", "f")]
    assert store.list_namespaces(prefix=(r,), suffix=("d", "*")) == [(r, "b", "d", "e"), (r, "b", "d", "i")]
    assert store.list_namespaces(prefix=(r,), limit=2, offset=1) == [(r, "b", "d", "e"), (r, "b", "d", "i")]
    assert store.list_namespaces(prefix=(r, "zzz")) == []


@pytest.mark.parametrize(
    "bad", [(), ("langgraph", "x"), ("a.b",), ("a", ""), ("a", 1), ("nul\x00",)], ids=repr
)
def test_bad_namespaces_are_rejected(store: IndexedStore, bad: tuple) -> None:
    with pytest.raises(InvalidNamespaceError) as raised:
        store.put(bad, "k", {"v": 1})
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, LgdistError)
    if bad and bad[0] != "langgraph":  # the reserved root is only refused for writes
        with pytest.raises(InvalidNamespaceError):
            store.batch([GetOp(bad, "k")])  # ops given straight to batch are checked too


def _semantic(make_store: Callable[..., IndexedStore], **index: Any) -> IndexedStore:
    return make_store(index={"dims": 32, "embed": WordHashEmbeddings(32), **index})


def test_semantic_search_ranks_by_similarity(make_store: Callable[..., IndexedStore], root: str) -> None:
    store = _semantic(make_store, fields=["text"])
    store.put((root, "ada"), "tea", {"text": "ada likes green tea", "kind": "pref"})
    store.put((root, "ada"), "code", {"text": "ada writes compilers", "kind": "fact"})
    store.put((root, "bob"), "coffee", {"text": "bob likes black coffee", "kind": "pref"})
    store.put((root, "bob"), "plain", {"text": "green tea green tea"}, index=False)
    found = store.search((root,), query="green tea")
    assert keys(found)[:1] == ["tea"]
    assert keys(found)[-1] == "plain" and found[-1].score is None  # unindexed items come last
    scores = [item.score for item in found if item.score is not None]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1.0000001
    assert keys(store.search((root,), query="coffee", filter={"kind": "pref"}, limit=1)) == ["coffee"]
    assert keys(store.search((root, "ada"), query="compilers")) == ["code", "tea"]
    assert keys(store.search((root,), query="likes", limit=1, offset=1))[0] in {"tea", "coffee"}


def test_reput_replaces_vectors(make_store: Callable[..., IndexedStore], root: str) -> None:
    store = _semantic(make_store, fields=["text"])
    store.put((root,), "k", {"text": "green tea"})
    store.put((root,), "other", {"text": "black coffee"})
    store.put((root,), "k", {"text": "black coffee ceremony", "old": "green tea"})
    assert keys(store.search((root,), query="green tea", limit=1)) != ["k"] or (
        store.search((root,), query="green tea", limit=1)[0].score < 0.5
    )
    store.put((root,), "k", {"text": "green tea"}, index=False)
    assert store.search((root,), query="green tea")[-1].key == "k"


def test_index_fields_per_put_and_nested_paths(make_store: Callable[..., IndexedStore], root: str) -> None:
    store = _semantic(make_store, fields=["chapters[*].title"])
    store.put((root,), "b1", {"chapters": [{"title": "green tea"}, {"title": "black coffee"}]})
    store.put((root,), "b2", {"chapters": [{"title": "compilers"}]})
    store.put((root,), "b3", {"summary": "black coffee", "chapters": []}, index=["summary"])
    assert keys(store.search((root,), query="black coffee"))[:2] in (["b1", "b3"], ["b3", "b1"])
    assert keys(store.search((root,), query="compilers", limit=1)) == ["b2"]


def test_search_query_without_index_is_a_plain_search(store: IndexedStore, root: str) -> None:
    store.put((root,), "k", {"text": "green tea"})
    found = store.search((root,), query="green tea")
    assert keys(found) == ["k"] and found[0].score is None


def test_batch_reads_see_state_before_its_writes(store: IndexedStore, root: str) -> None:
    store.put((root,), "k", {"v": 0})
    results = store.batch(
        [PutOp((root,), "k", {"v": 1}), GetOp((root,), "k"), PutOp((root,), "k", {"v": 2}),
         SearchOp((root,)), PutOp((root,), "gone", {"v": 3}), PutOp((root,), "gone", None)]
    )  # fmt: skip
    assert results[0] is None and results[1].value == {"v": 0}
    assert [i.value for i in results[3]] == [{"v": 0}]
    assert store.get((root,), "k").value == {"v": 2}
    assert store.get((root,), "gone") is None


def test_async_twins(make_store: Callable[..., IndexedStore], root: str) -> None:
    calls: list[int] = []
    words = WordHashEmbeddings(16)

    async def embed(texts: list[str]) -> list[list[float]]:
        calls.append(len(texts))
        return words.embed_documents(texts)

    store = make_store(index={"dims": 16, "embed": embed, "fields": ["text"]})

    async def run() -> None:
        await store.aput((root, "a"), "k1", {"text": "green tea"})
        await store.aput((root, "a", "b"), "k2", {"text": "black coffee"})
        assert (await store.aget((root, "a"), "k1")).value == {"text": "green tea"}
        assert keys(await store.asearch((root,), query="coffee"))[0] == "k2"
        assert await store.alist_namespaces(prefix=(root,)) == [(root, "a"), (root, "a", "b")]
        await store.adelete((root, "a"), "k1")
        got = await store.abatch([GetOp((root, "a"), "k1"), GetOp((root, "a", "b"), "k2")])
        assert got[0] is None and got[1].key == "k2"

    asyncio.run(run())
    assert calls  # the async embedding ran
    with pytest.raises(TypeError, match="async"):
        store.put((root,), "sync", {"text": "needs the async methods"})


def test_ttl_expiry_refresh_and_sweep(make_store: Callable[..., IndexedStore], root: str, clock: Any) -> None:
    store = make_store(ttl={"omit_expired": True, "refresh_on_read": True})
    store._now = clock  # type: ignore[method-assign]
    store.put((root,), "short", {"v": 1}, ttl=10)
    store.put((root,), "forever", {"v": 2})
    clock.advance(8)
    assert store.get((root,), "short") is not None  # and pushed back to now + 10
    clock.advance(8)
    assert store.get((root,), "short", refresh_ttl=False) is not None
    clock.advance(3)
    assert store.get((root,), "short") is None
    assert keys(store.search((root,))) == ["forever"]
    assert store.list_namespaces(prefix=(root,)) == [(root,)]
    assert store.sweep_ttl() >= 1
    store.ttl_config = {"omit_expired": False}
    assert store.get((root,), "short") is None  # deleted, not just hidden


def test_expired_items_stay_visible_until_swept_by_default(make_store: Callable[..., IndexedStore], root: str, clock: Any) -> None:
    """LangGraph's TTLConfig: omit_expired defaults to False."""
    store = make_store(ttl={"default_ttl": 1})
    store._now = clock  # type: ignore[method-assign]
    store.put((root,), "k", {"v": 1})  # default_ttl applies
    clock.advance(2)
    assert store.get((root,), "k", refresh_ttl=False) is not None
    store.sweep_ttl()
    assert store.get((root,), "k") is None


def test_ttl_sweeper_thread_deletes_expired_items(make_store: Callable[..., IndexedStore], root: str) -> None:
    import time

    store = make_store()
    store.put((root,), "k", {"v": 1}, ttl=0.001)  # 60 ms
    store.start_ttl_sweeper(sweep_interval_minutes=0.001)
    deadline = time.monotonic() + 30
    while store.get((root,), "k", refresh_ttl=False) is not None:
        assert time.monotonic() < deadline, "the sweeper never deleted the expired item"
        time.sleep(0.05)
    assert store.stop_ttl_sweeper(timeout=10)


def test_memory_store_supports_ttl_flag() -> None:
    assert InMemoryStore.supports_ttl is True


def test_sql_reads_without_ttl_write_nothing(tmp_path: Any) -> None:
    """A get or search of items without a ttl opens no write transaction
    (SQLite would serialize every read behind the writers)."""
    from lgdist.store.sqlite import SqliteStore

    store = SqliteStore.from_conn_string(str(tmp_path / "reads.db"))
    store.put(("r",), "k", {"v": 1})
    store.put(("r",), "t", {"v": 2}, ttl=60)
    opened: list[str] = []
    real = store._transaction

    def spy() -> Any:
        opened.append("write")
        return real()

    store._transaction = spy  # type: ignore[method-assign]
    assert store.get(("r",), "k").value == {"v": 1}
    assert len(store.search(("r",), filter={"v": 1})) == 1
    assert opened == []
    assert store.get(("r",), "t").value == {"v": 2}  # a ttl item's expiry is pushed back: one write
    assert opened == ["write"]
    store.close()


def test_asweep_ttl(make_store: Callable[..., IndexedStore], root: str, clock: Any) -> None:
    store = make_store()
    store._now = clock  # type: ignore[method-assign]
    store.put((root,), "k", {"v": 1}, ttl=1)
    assert asyncio.run(store.asweep_ttl()) == 0
    clock.advance(2)
    assert asyncio.run(store.asweep_ttl()) >= 1
    assert store.get((root,), "k") is None


def test_sqlite_store_wraps_an_open_connection_and_checks_dialects(tmp_path: Any) -> None:
    import sqlite3

    from lgdist.store.postgres import PostgresStore
    from lgdist.store.sqlite import SqliteStore

    conn = sqlite3.connect(str(tmp_path / "own.db"), check_same_thread=False)
    store = SqliteStore(conn)
    store.put(("a",), "k", {"v": 1})
    store.close()  # the caller's connection stays open
    assert conn.execute("SELECT count(*) FROM lgdist_store").fetchone() == (1,)
    conn.close()
    with pytest.raises(ValueError, match="needs a Postgres database"):
        PostgresStore("sqlite://")
    with SqliteStore.from_conn_string(":memory:") as memory:
        memory.put(("a",), "k", {"v": 2})
        assert memory.get(("a",), "k").value == {"v": 2}
