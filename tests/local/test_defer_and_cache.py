"""defer=True and node caching beyond what the differential scenarios
compare: deferred triggers stored in a real checkpoint store and read back
by another process's saver, the cache's TTL, keys and copies."""

from __future__ import annotations

import operator
from typing import Annotated

from typing_extensions import TypedDict

from lgdist.cache.keys import default_cache_key
from lgdist.cache.memory import InMemoryCache
from lgdist.checkpoint.sqlite import SqliteSaver
from lgdist.graph import END, START, StateGraph
from lgdist.types import CachePolicy, Command, interrupt


class Log(TypedDict):
    log: Annotated[list, operator.add]


def _deferred_graph(saver):
    g = StateGraph(Log)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_node("x", lambda s: {"log": ["x"]})
    g.add_node("ask", lambda s: {"log": [interrupt("go?")]})
    g.add_node("d", lambda s: {"log": ["d:" + ",".join(s["log"])]}, defer=True)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "x")
    g.add_edge("x", "ask")
    g.add_edge(["b", "ask"], "d")
    g.add_edge("d", END)
    return g.compile(checkpointer=saver)


def test_deferred_join_survives_a_stored_checkpoint(tmp_path, thread):
    path = str(tmp_path / "defer.db")
    with SqliteSaver.from_conn_string(path) as saver:
        saver.setup()
        first = _deferred_graph(saver).invoke({"log": []}, thread)
    assert first["log"] == ["a", "b", "x"] and "__interrupt__" in first
    # Another saver on the same file: the join's progress (b wrote a step
    # before ask) comes back from storage.
    with SqliteSaver.from_conn_string(path) as saver:
        out = _deferred_graph(saver).invoke(Command(resume="yes"), thread)
        history = list(_deferred_graph(saver).get_state_history(thread))
    assert out["log"] == ["a", "b", "x", "yes", "d:a,b,x,yes"]
    assert [s.next for s in history][:2] == [(), ("d",)]


def test_cache_entries_expire_after_their_ttl():
    now = [1000.0]
    cache = InMemoryCache(clock=lambda: now[0])
    key = (("ns",), "k")
    cache.set({key: ({"v": 1}, 10), (("ns",), "forever"): ("x", None)})
    now[0] += 9.9
    assert cache.get([key]) == {key: {"v": 1}}
    now[0] += 0.1
    assert cache.get([key]) == {}
    now[0] += 10**6
    assert cache.get([(("ns",), "forever")]) == {(("ns",), "forever"): "x"}


def test_cached_node_runs_again_once_its_entry_expired():
    now = [0.0]
    calls = []

    def slow(state: Log):
        calls.append(1)
        return {"log": ["slow"]}

    g = StateGraph(Log)
    g.add_node("slow", slow, cache_policy=CachePolicy(ttl=5))
    g.add_edge(START, "slow")
    graph = g.compile(cache=InMemoryCache(clock=lambda: now[0]))
    graph.invoke({"log": []})
    graph.invoke({"log": []})
    assert len(calls) == 1
    now[0] = 5.0
    chunks = list(graph.stream({"log": []}, stream_mode="updates"))
    assert chunks == [{"slow": {"log": ["slow"]}}] and len(calls) == 2


def test_cache_hits_are_copies():
    cache = InMemoryCache()
    key = (("ns",), "k")
    value = [("log", ["a"])]
    cache.set({key: (value, None)})
    value[0][1].append("changed")
    got = cache.get([key])[key]
    got[0][1].append("mutated")
    assert cache.get([key])[key] == [("log", ["a"])]


def test_default_cache_key_ignores_dict_order_and_takes_any_value():
    assert default_cache_key({"a": 1, "b": [1, 2]}) == default_cache_key({"b": [1, 2], "a": 1})
    assert default_cache_key({"a": 1}) != default_cache_key({"a": 2})
    assert default_cache_key((1, 2)) != default_cache_key([1, 2])

    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    assert "Opaque()" in default_cache_key(Opaque())
