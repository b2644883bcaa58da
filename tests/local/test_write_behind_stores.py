"""durability="async" (the default) on the SQL stores: checkpoints and
writes are stored behind the steps, and the thread ends up exactly as with
"sync" — same history, same pending writes, same errors."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any, TypedDict

import pytest

from lgdist.checkpoint.postgres import PostgresSaver
from lgdist.checkpoint.sqlite import SqliteSaver
from lgdist.errors import SerializationError
from lgdist.graph import END, START, StateGraph
from tests.conftest import POSTGRES_URL


class S(TypedDict, total=False):
    n: int
    log: Annotated[list, operator.add]
    blob: Any


@pytest.fixture(params=["sqlite_file", pytest.param("postgres", marks=pytest.mark.integration)])
def saver(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    if request.param == "sqlite_file":
        store: Any = SqliteSaver.from_conn_string(str(tmp_path / "cp.db"))
    else:
        store = PostgresSaver.from_conn_string(POSTGRES_URL)
    yield store
    store.close()


def _chain(saver: Any, length: int = 12) -> Any:
    g = StateGraph(S)
    prev = START
    for i in range(length):
        g.add_node(f"n{i}", lambda s, i=i: {"n": s.get("n", 0) + 1, "log": [i]})
        g.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    g.add_edge(prev, END)
    return g.compile(checkpointer=saver)


def _cfg() -> dict:
    return {"configurable": {"thread_id": f"t-{uuid.uuid4().hex[:12]}"}}


def _history(graph: Any, cfg: dict) -> list:
    return [
        (s.values, s.next, s.metadata["step"], s.metadata["source"], s.parent_config is None, len(s.tasks))
        for s in graph.get_state_history(cfg)
    ]


def test_async_default_stores_the_same_history_as_sync(saver):
    graph = _chain(saver)
    default, sync = _cfg(), _cfg()
    assert graph.invoke({"n": 0}, default) == graph.invoke({"n": 0}, sync, durability="sync")
    # A second invoke continues from the last stored checkpoint.
    assert graph.invoke({"n": 100}, default) == graph.invoke({"n": 100}, sync, durability="sync")
    assert _history(graph, default) == _history(graph, sync)
    assert len(_history(graph, default)) == 2 * 14


async def test_async_twin_stores_the_same_history_as_sync(saver):
    graph = _chain(saver)
    default, sync = _cfg(), _cfg()
    assert await graph.ainvoke({"n": 0}, default) == await graph.ainvoke({"n": 0}, sync, durability="sync")
    assert _history(graph, default) == _history(graph, sync)


def test_a_stopped_stream_has_stored_what_it_streamed(saver):
    graph = _chain(saver)
    cfg = _cfg()
    for i, _chunk in enumerate(graph.stream({"n": 0}, cfg, stream_mode="values")):
        if i == 5:
            break
    assert graph.get_state(cfg).values["n"] == 5


def test_unstorable_value_fails_the_invoke_at_its_step_naming_the_key(saver):
    g = StateGraph(S)
    g.add_node("a", lambda s: {"n": 1})
    g.add_node("b", lambda s: {"blob": object()})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    graph = g.compile(checkpointer=saver)
    cfg = _cfg()
    with pytest.raises(SerializationError, match="blob"):
        graph.invoke({"n": 0}, cfg)
    # The steps before it were stored.
    assert graph.get_state(cfg).values["n"] == 1


def test_a_store_failure_behind_the_steps_fails_the_invoke(saver, monkeypatch):
    graph = _chain(saver)
    calls = []

    def failing(*rows: Any) -> None:
        calls.append(rows)
        raise RuntimeError("store unavailable")

    monkeypatch.setattr(saver, "_store_rows", failing)
    with pytest.raises(RuntimeError, match="store unavailable"):
        graph.invoke({"n": 0}, _cfg())
    assert calls


def test_a_failed_parallel_task_leaves_its_siblings_writes_stored(saver):
    def boom(state: S) -> dict:
        raise ValueError("boom")

    g = StateGraph(S)
    g.add_node("src", lambda s: {"n": 1})
    g.add_node("ok", lambda s: {"log": ["ok"]})
    g.add_node("bad", boom)
    g.add_edge(START, "src")
    g.add_edge("src", "ok")
    g.add_edge("src", "bad")
    graph = g.compile(checkpointer=saver)
    cfg = _cfg()
    with pytest.raises(ValueError, match="boom"):
        graph.invoke({"n": 0}, cfg)
    state = graph.get_state(cfg)
    by_name = {t.name: t for t in state.tasks}
    assert "boom" in (by_name["bad"].error or "")
    written = {(c, str(v)) for _t, c, v in saver.get_tuple(cfg).pending_writes}
    assert ("log", "['ok']") in written
