"""Graphs on the local runtime with each kind of store, and the settings
that give workers their shared store."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

from lgdist.distributed.store import load_index_config, open_shared_store
from lgdist.settings import Settings
from lgdist.store.indexed import IndexedStore
from lgdist.store.sql import SQLStore
from workers import memories

FACTS = ["likes green tea", "writes compilers in ocaml", "plays the cello"]


def test_graph_nodes_use_the_compiled_store(make_store: Callable[..., IndexedStore], root: str) -> None:
    store = make_store(index=memories.STORE_INDEX)
    graph = memories.build().compile(store=store)
    out = graph.invoke({"user": root, "facts": FACTS, "question": "cello"})
    assert out["recalled"][0] == "plays the cello"
    assert ["memories", root] in out["namespaces"]
    again = asyncio.run(graph.ainvoke({"user": root, "question": "compilers"}))
    assert again["recalled"][0] == "writes compilers in ocaml"
    assert sorted(i.value["text"] for i in store.search(("memories", root))) == sorted(FACTS)


def test_shared_store_defaults_to_the_checkpoint_database(tmp_path: Any) -> None:
    from lgdist.checkpoint.sql import SQLCheckpointSaver

    settings = Settings(
        home=tmp_path, database_url=None, store_url=None,
        store_index="workers.memories:STORE_INDEX", store_ttl_minutes=5,
    )  # fmt: skip
    assert settings.resolved_store_url() == settings.resolved_database_url()
    saver = SQLCheckpointSaver(settings.resolved_database_url())
    store = open_shared_store(settings, saver.engine)
    assert store.engine is saver.engine  # one database, one connection pool
    assert store.embeddings is memories.STORE_INDEX["embed"]
    assert store.ttl_config == {"default_ttl": 5}
    assert store._sweeper is None  # no sweeping unless asked
    store.put(("a",), "k", {"text": "x"})
    assert store.get(("a",), "k").value == {"text": "x"}
    saver.engine.dispose()


def test_shared_store_may_live_elsewhere(tmp_path: Any) -> None:
    settings = Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path / 'memories.db'}", store_index=None)
    store = open_shared_store(settings, engine := SQLStore("sqlite://").engine)
    assert store.engine is not engine and str(store.engine.url).endswith("memories.db")
    assert store.embeddings is None
    store.close()


@pytest.mark.parametrize("target", ["workers.memories", "workers.memories:FACTS_NOPE", "lgdist.settings:Settings"])
def test_bad_index_settings_are_reported(target: str) -> None:
    with pytest.raises((ValueError, AttributeError, TypeError)):
        load_index_config(target)


def test_shared_store_sweeps_when_asked(tmp_path: Any) -> None:
    import time

    settings = Settings(home=tmp_path, database_url=None, store_url=None, store_index=None, store_sweep_minutes=0.001)
    store = open_shared_store(settings, SQLStore(settings.resolved_database_url()).engine)
    assert store.ttl_config == {"sweep_interval_minutes": 0.001}
    store.put(("a",), "k", {"v": 1}, ttl=0.001)
    deadline = time.monotonic() + 30
    while store.get(("a",), "k", refresh_ttl=False) is not None:
        assert time.monotonic() < deadline, "the worker's sweeper never deleted the expired item"
        time.sleep(0.05)
    assert store.stop_ttl_sweeper(timeout=10)
