"""The process-wide cache of decoded channel values."""

import sqlalchemy as sa

from lgdist.checkpoint.blob_cache import MISSING, BlobCache, cacheable_version
from lgdist.checkpoint.sqlite import SqliteSaver


def test_the_cache_is_bounded_by_size_least_recently_used_first_out():
    cache = BlobCache(max_bytes=100)
    for i in range(5):
        cache.put(("t", "", "c", str(i)), i, 20)
    assert cache.get(("t", "", "c", "0")) == 0  # now the most recent
    cache.put(("t", "", "c", "5"), 5, 20)
    assert cache.get(("t", "", "c", "1")) is MISSING
    assert cache.get(("t", "", "c", "0")) == 0
    assert len(cache) == 5
    cache.put(("t", "", "c", "big"), "x", 60)  # over a quarter of the budget: not cached
    assert cache.get(("t", "", "c", "big")) is MISSING


def test_values_are_handed_out_as_copies():
    cache = BlobCache()
    items = [1, 2]
    cache.put(("t", "", "c", "v"), items, 10)
    items.append(3)
    got = cache.get(("t", "", "c", "v"))
    got.append(4)
    assert cache.get(("t", "", "c", "v")) == [1, 2]


def test_only_generated_versions_are_cached():
    saver = SqliteSaver.from_conn_string(":memory:")
    assert cacheable_version(saver.get_next_version(None))
    assert not cacheable_version("1") and not cacheable_version(1)


def test_a_warm_restore_reads_only_the_changed_channel():
    from typing import Annotated, TypedDict
    import operator

    from lgdist.graph import END, START, StateGraph

    class State(TypedDict):
        history: Annotated[list, operator.add]
        big: str
        turn: int

    def node(state: State):
        return {"history": [f"turn {state['turn']}"], "turn": state["turn"] + 1}

    builder = StateGraph(State)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    builder.add_edge("node", END)
    saver = SqliteSaver.from_conn_string(":memory:")
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "warm"}}
    graph.invoke({"history": [], "big": "x" * 10_000, "turn": 0}, config)
    blob_reads: list[str] = []

    def count(conn, cursor, statement, *args):
        if "FROM lgdist_blobs" in statement:
            blob_reads.append(statement)

    sa.event.listen(saver.engine, "after_cursor_execute", count)
    try:
        out = graph.invoke({"turn": 5}, config)
    finally:
        sa.event.remove(saver.engine, "after_cursor_execute", count)
    assert out["history"] == ["turn 0", "turn 5"] and out["big"] == "x" * 10_000
    assert blob_reads == [], "every value was cached by the store that wrote it"
    saver.delete_thread("warm")
    assert saver.get_tuple(config) is None
