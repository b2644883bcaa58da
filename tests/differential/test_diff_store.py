"""The long-term memory store against LangGraph's ``InMemoryStore``: the
API's answers (items, searches, listings, errors, batches) and the store as
nodes see it (``store=`` at compile, a ``store`` parameter, ``get_store()``,
``runtime.store``)."""

import asyncio
import operator
from typing import Annotated, Any

from typing_extensions import TypedDict

from lgdist.testing import WordHashEmbeddings

from .harness import acapture, capture, differential, thread


def items(found: Any) -> Any:
    """Items as comparable values: timestamps checked for order, not value."""
    if found is None:
        return None
    if isinstance(found, list):
        return [items(i) for i in found]
    out = {"ns": tuple(found.namespace), "key": found.key, "value": found.value}
    out["fresh"] = found.created_at <= found.updated_at and found.created_at.tzinfo is not None
    if hasattr(found, "score"):
        out["score"] = None if found.score is None else round(found.score, 6)
    return out


def _memories(store: Any) -> None:
    store.put(("users", "ada", "memories"), "m1", {"text": "ada likes green tea", "kind": "pref", "n": 1})
    store.put(("users", "ada", "memories"), "m2", {"text": "ada works on compilers", "kind": "fact", "n": 2})
    store.put(("users", "ada", "notes"), "n1", {"text": "call bob", "kind": "todo", "n": 3, "meta": {"p": "high"}})
    store.put(("users", "bob", "memories"), "m1", {"text": "bob likes black coffee", "kind": "pref", "n": 4})
    store.put(("docs",), "d1", {"text": "green tea guide", "tags": ["tea", "green"], "n": 5})


@differential
def test_store_put_get_update_delete(ns):
    store = ns.InMemoryStore()
    _memories(store)
    first = store.get(("users", "ada", "memories"), "m1")
    store.put(("users", "ada", "memories"), "m1", {"text": "ada likes oolong", "kind": "pref", "n": 1})
    second = store.get(("users", "ada", "memories"), "m1")
    store.delete(("users", "ada", "memories"), "m2")
    store.delete(("users", "ada", "memories"), "never-there")
    return {
        "first": items(first),
        "second": items(second),
        "updated_later": second.updated_at >= first.updated_at,
        "deleted": items(store.get(("users", "ada", "memories"), "m2")),
        "missing_ns": items(store.get(("nobody",), "x")),
        "int_key": items(store.get(("docs",), "d1")),
    }


@differential
def test_store_search_prefix_filter_and_paging(ns):
    store = ns.InMemoryStore()
    _memories(store)
    return {
        "all": items(store.search(())),
        "ada": items(store.search(("users", "ada"))),
        "users_pref": items(store.search(("users",), filter={"kind": "pref"})),
        "gt": items(store.search((), filter={"n": {"$gt": 2}})),
        "range": items(store.search((), filter={"n": {"$gte": 2, "$lte": 4}})),
        "ne": items(store.search(("users",), filter={"kind": {"$ne": "pref"}})),
        "eq_op": items(store.search(("users",), filter={"kind": {"$eq": "fact"}})),
        "nested": items(store.search((), filter={"meta": {"p": "high"}})),
        "list": items(store.search((), filter={"tags": ["tea", "green"]})),
        "no_match": items(store.search((), filter={"kind": "nothing"})),
        "limit": items(store.search((), limit=2)),
        "offset": items(store.search((), limit=2, offset=3)),
        "filter_paged": items(store.search(("users",), filter={"n": {"$lt": 10}}, limit=2, offset=1)),
        "prefix_is_by_label": items(store.search(("user",))),
    }


@differential
def test_store_list_namespaces(ns):
    store = ns.InMemoryStore()
    for namespace in [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f"), ("a", "c", "f"), ("x",)]:
        store.put(namespace, "k", {"v": 1})
    return {
        "all": store.list_namespaces(),
        "prefix": store.list_namespaces(prefix=("a", "b")),
        "depth": store.list_namespaces(prefix=("a", "b"), max_depth=3),
        "depth1": store.list_namespaces(max_depth=1),
        "suffix": store.list_namespaces(suffix=("f",)),
        "wildcard": store.list_namespaces(prefix=("a", "*", "f")),
        "both": store.list_namespaces(prefix=("a",), suffix=("*", "e")),
        "paged": store.list_namespaces(limit=2, offset=1),
        "none": store.list_namespaces(prefix=("zzz",)),
    }


@differential
def test_store_rejects_bad_namespaces(ns):
    """Same exception class (lgdist's says what to do in its own words)."""
    store = ns.InMemoryStore()
    store.put(("ok",), "k", {"v": 1})
    return {
        "empty": _kind(lambda: store.put((), "k", {"v": 1})),
        "reserved": _kind(lambda: store.put(("langgraph", "x"), "k", {"v": 1})),
        "period": _kind(lambda: store.put(("a.b",), "k", {"v": 1})),
        "empty_label": _kind(lambda: store.put(("a", ""), "k", {"v": 1})),
        "not_str": _kind(lambda: store.get(("a", 1), "k")),
        "search_period": _kind(lambda: store.search(("a.b",))),
        "list_period": _kind(lambda: store.list_namespaces(prefix=("a.b",))),
        "reserved_nested_ok": capture(lambda: store.put(("x", "langgraph"), "k", {"v": 1})),
        "is_value_error": isinstance(_raised(lambda: store.put((), "k", {})), ValueError),
        "bad_operator": _raised(lambda: store.search(("ok",), filter={"v": {"$regex": "x"}})).__class__.__name__,
        "ttl_on_memory": _raised(lambda: ns.InMemoryStore().put(("a",), "k", {}, ttl=5)).__class__.__name__
        if ns.name == "langgraph"
        else "NotImplementedError",  # lgdist's InMemoryStore supports ttl (DIFFERENCES.md)
    }


def _kind(fn: Any) -> str:
    return type(_raised(fn)).__name__


def _raised(fn: Any) -> BaseException:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the exception is the observation
        return exc
    raise AssertionError("nothing raised")


def _semantic_store(ns: Any, fields: Any = ("text",)) -> Any:
    index: dict = {"dims": 64, "embed": WordHashEmbeddings(64)}
    if fields is not None:
        index["fields"] = list(fields)
    return ns.InMemoryStore(index=index)


@differential
def test_store_semantic_search(ns):
    store = _semantic_store(ns)
    _memories(store)
    store.put(("users", "ada", "memories"), "m3", {"text": "tea tea tea"}, index=False)
    store.put(("users", "ada", "memories"), "m4", {"other": "green tea ceremony", "text": "x"}, index=["other"])
    return {
        "ranked": items(store.search(("users",), query="green tea")),
        "filtered": items(store.search(("users",), query="coffee", filter={"kind": "pref"})),
        "paged": items(store.search((), query="likes tea", limit=2, offset=1)),
        "no_query": items(store.search(("users", "ada", "memories"))),
    }


@differential
def test_store_semantic_search_over_paths(ns):
    store = _semantic_store(ns, fields=("chapters[*].title", "author.name"))
    store.put(("books",), "b1", {"chapters": [{"title": "green tea"}, {"title": "black coffee"}], "author": {"name": "ada"}})
    store.put(("books",), "b2", {"chapters": [{"title": "compilers"}], "author": {"name": "bob"}})
    whole = _semantic_store(ns, fields=None)
    whole.put(("docs",), "d", {"body": "green tea"})
    whole.put(("docs",), "e", {"body": "compilers and parsers"})
    return {
        "coffee": items(store.search(("books",), query="black coffee")),
        "bob": items(store.search(("books",), query="bob")),
        "whole_value": items(whole.search(("docs",), query="parsers")),
    }


@differential
def test_store_batch_reads_before_writes_and_last_put_wins(ns):
    store = ns.InMemoryStore()
    store.put(("a",), "k", {"v": 0})
    results = store.batch(
        [
            ns.PutOp(("a",), "k", {"v": 1}),
            ns.GetOp(("a",), "k"),
            ns.PutOp(("a",), "k", {"v": 2}),
            ns.SearchOp(("a",)),
            ns.ListNamespacesOp(match_conditions=(ns.MatchCondition("prefix", ("a",)),)),
            ns.PutOp(("b",), "k", {"v": 3}),
            ns.PutOp(("b",), "k", None),
        ]
    )
    return {
        "results": [items(r) if not (isinstance(r, list) and r and isinstance(r[0], tuple)) else r for r in results],
        "after": items(store.get(("a",), "k")),
        "deleted_in_batch": items(store.get(("b",), "k")),
    }


@differential
def test_store_async_twins(ns):
    async def run() -> dict:
        store = _semantic_store(ns)
        await store.aput(("a",), "k1", {"text": "green tea"})
        await store.aput(("a", "b"), "k2", {"text": "black coffee"})
        got = await store.aget(("a",), "k1")
        found = await store.asearch(("a",), query="coffee")
        listed = await store.alist_namespaces()
        await store.adelete(("a",), "k1")
        batch = await store.abatch([ns.GetOp(("a",), "k1"), ns.GetOp(("a", "b"), "k2")])
        bad = (await acapture(store.aput((), "k", {})))["raised"]
        return {"got": items(got), "found": items(found), "listed": listed, "batch": items(batch), "bad": bad}

    return asyncio.run(run())


class Memory(TypedDict):
    user: str
    said: Annotated[list, operator.add]


@differential
def test_store_reaches_nodes_every_way(ns):
    def remember(state: Memory, *, store: ns.BaseStore):
        store.put(("memories", state["user"]), f"m{len(state['said'])}", {"said": state["said"][-1]})
        return {}

    def recall_get_store(state: Memory):
        found = ns.get_store().search(("memories", state["user"]))
        return {"said": [f"get_store:{[i.value['said'] for i in found]}"]}

    def recall_runtime(state: Memory, runtime: ns.Runtime):
        got = runtime.store.get(("memories", state["user"]), "m0")
        return {"said": [f"runtime:{got.value['said'] if got else None}"]}

    g = ns.StateGraph(Memory)
    g.add_node("remember", remember)
    g.add_node("recall_get_store", recall_get_store)
    g.add_node("recall_runtime", recall_runtime)
    g.add_edge(ns.START, "remember")
    g.add_edge("remember", "recall_get_store")
    g.add_edge("recall_get_store", "recall_runtime")
    store = ns.InMemoryStore()
    graph = g.compile(store=store, checkpointer=ns.InMemorySaver())
    first = graph.invoke({"user": "ada", "said": ["hello"]}, thread("a"))
    # Another thread sees the same memories: the store is not per thread.
    second = graph.invoke({"user": "ada", "said": ["again"]}, thread("b"))
    return {
        "first": first,
        "second": second,
        "stored": items(store.search(("memories",))),
        "no_store": capture(lambda: g.compile().invoke({"user": "bob", "said": ["x"]})),
    }


@differential
def test_store_in_async_nodes_and_subgraphs(ns):
    class S(TypedDict):
        user: str
        seen: Annotated[list, operator.add]

    async def remember(state: S, *, store: ns.BaseStore):
        await store.aput(("mem", state["user"]), "k", {"text": "green tea"})
        return {}

    async def recall(state: S, *, store: ns.BaseStore):
        found = await store.asearch(("mem", state["user"]), query="tea")
        return {"seen": [[i.value["text"] for i in found]]}

    def child_node(state: S):
        got = ns.get_store().get(("mem", state["user"]), "k")
        return {"seen": [f"child:{got.value['text'] if got else None}"]}

    c = ns.StateGraph(S)
    c.add_node("child_node", child_node)
    c.add_edge(ns.START, "child_node")
    g = ns.StateGraph(S)
    g.add_node("remember", remember)
    g.add_node("recall", recall)
    g.add_node("child", c.compile())
    g.add_edge(ns.START, "remember")
    g.add_edge("remember", "recall")
    g.add_edge("recall", "child")
    store = _semantic_store(ns)
    graph = g.compile(store=store, checkpointer=ns.InMemorySaver())
    return asyncio.run(graph.ainvoke({"user": "ada", "seen": []}, thread("s")))


@differential
def test_store_path_helpers(ns):
    value = {"a": {"b": [{"c": "x"}, {"c": 2}]}, "n": None, "t": True, "l": [1, [2]], "s": "text"}
    paths = ["$", "a.b[*].c", "a.b[-1].c", "a.b[5].c", "n", "t", "l", "l[*]", "*", "{a,t}", "{s,a.b}", "missing", "a.b"]
    words = WordHashEmbeddings(8)
    embeddings = ns.ensure_embeddings(words.embed_documents)
    return {
        "texts": {p: ns.get_text_at_path(value, p) for p in paths},
        "tokens": [ns.tokenize_path(p) for p in ["a.b[*].c", "a[0]", "{x,y.z}", "x"]],
        "embed_function": embeddings.embed_documents(["green tea"]) == words.embed_documents(["green tea"]),
        "same_instance": ns.ensure_embeddings(words) is words,
        "validate": _kind(lambda: ns.validate_op_namespace(ns.GetOp(("a.b",), "k"))),
    }
