"""Delta storage of growing lists, in every store (memory, SQLite, Postgres):
values read back exactly as without deltas, while a step writes only what it
appended. The chain planner itself is tested in ``test_delta_chains.py``, the
SQL store's queries in ``test_deltas_sql.py``."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
import sqlalchemy as sa

from lgdist.checkpoint.blob_cache import CACHE
from lgdist.checkpoint.sql import SQLCheckpointSaver
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage

from lgdist.checkpoint.base import BaseCheckpointSaver
from lgdist.checkpoint import sql_chains
from lgdist.checkpoint.delta import FANOUT
from lgdist.checkpoint.sql import checkpoints_table
from lgdist.graph import END, START, MessagesState, StateGraph


class WithoutHint(BaseCheckpointSaver):
    """A store used as before deltas: ``put`` never gets ``previous``."""

    def __init__(self, inner: BaseCheckpointSaver) -> None:
        self.inner = inner

    def get_tuple(self, config: Any) -> Any:
        return self.inner.get_tuple(config)

    def list(self, config: Any, **kwargs: Any) -> Any:
        return self.inner.list(config, **kwargs)

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any, *, previous: Any = None, **kw: Any) -> Any:
        return self.inner.put(config, checkpoint, metadata, new_versions, **kw)

    def put_writes(self, *args: Any, **kwargs: Any) -> None:
        self.inner.put_writes(*args, **kwargs)

    def delete_thread(self, thread_id: str) -> None:
        self.inner.delete_thread(thread_id)


def _step(saver, parent_config, parent, new_checkpoint, *, append=(), values=None, hint=True):
    """Store the child of ``parent`` as the local loop does: bump the versions
    of the channels that change, and pass ``previous`` with its versions
    already bumped (the loop's apply_writes mutates them in place)."""
    new_values = dict(parent["channel_values"])
    if append:
        new_values["items"] = list(new_values.get("items", [])) + list(append)
    new_values.update(values or {})
    versions = dict(parent["channel_versions"])
    changed = [c for c in new_values if c not in parent["channel_values"] or new_values[c] is not parent["channel_values"][c]]
    top = max(versions.values(), default=None)
    for channel in changed:
        top = versions[channel] = saver.get_next_version(top)
    checkpoint = new_checkpoint(new_values, versions)
    previous = {**parent, "channel_versions": dict(versions)} if hint else None
    config = saver.put(parent_config, checkpoint, {"n": len(new_values.get("items", []))},
                       {c: versions[c] for c in changed}, previous=previous)  # fmt: skip
    return config, checkpoint


def _grow(saver, config, thread_id, new_checkpoint, steps, *, hint=True, item=lambda i: f"item-{i:04d}" * 20):
    """A thread whose "items" list grows by one per step (and "step" counts)."""
    parent_config, parent = config(thread_id), {"id": None, "channel_values": {}, "channel_versions": {}}
    out = []
    for i in range(steps):
        parent_config, parent = _step(
            saver, parent_config, parent, new_checkpoint, append=[item(i)], values={"step": i}, hint=hint
        )
        out.append((parent_config, parent))
    return out


def _values(saver, cfg):
    return saver.get_tuple(cfg).checkpoint["channel_values"]


def _bases(blob_rows, thread_id, steps):
    rows = blob_rows(thread_id)
    return [rows[("items", cp["channel_versions"]["items"])][0] for _cfg, cp in steps]


# ------------------------------------------------------------ storage shape
def test_appended_items_are_stored_as_deltas(saver, thread_id, config, new_checkpoint, blob_rows):
    steps = _grow(saver, config, thread_id, new_checkpoint, 40)

    bases = _bases(blob_rows, thread_id, steps)
    versions = [cp["channel_versions"]["items"] for _cfg, cp in steps]
    assert bases[0] is None  # the first value is a root
    assert bases[1:FANOUT] == versions[: FANOUT - 1]  # then one step each
    assert bases[FANOUT] == versions[0]  # row 32 restates everything since the root
    assert bases[FANOUT + 1] == versions[FANOUT]
    sizes = {version: size for (channel, version), (_base, size) in blob_rows(thread_id).items() if channel == "items"}
    assert sizes[versions[39]] == sizes[versions[9]] < sizes[versions[0]] * 2


def test_without_previous_every_value_is_stored_whole(saver, thread_id, config, new_checkpoint, blob_rows):
    steps = _grow(saver, config, thread_id, new_checkpoint, 5, hint=False)

    assert _bases(blob_rows, thread_id, steps) == [None] * 5


def test_previous_that_is_not_the_parent_is_ignored(saver, thread_id, config, new_checkpoint, blob_rows):
    (c1, cp1), (c2, cp2) = _grow(saver, config, thread_id, new_checkpoint, 2)
    # A child of c2 whose hint names c1 (a stale or foreign checkpoint).
    cp3 = new_checkpoint({"items": cp2["channel_values"]["items"] + ["x"]}, {"items": saver.get_next_version("9")})
    c3 = saver.put(c2, cp3, {}, dict(cp3["channel_versions"]), previous=cp1)

    assert blob_rows(thread_id)[("items", cp3["channel_versions"]["items"])][0] is None
    assert _values(saver, c3) == {"items": cp3["channel_values"]["items"]}


def test_bytes_written_per_step_stay_flat(saver, thread_id, config, new_checkpoint, blob_rows):
    steps = _grow(saver, config, thread_id, new_checkpoint, 2 * FANOUT + 8)
    sizes = {v: size for (c, v), (_b, size) in blob_rows(thread_id).items() if c == "items"}
    per_step = [sizes[cp["channel_versions"]["items"]] for _cfg, cp in steps]

    one_item = per_step[5]
    assert per_step[-1] == per_step[-5] == one_item
    # Level rows (every 32nd) restate 32 steps: amortized ~2 items per step.
    assert sum(per_step[8:]) / len(per_step[8:]) < 2.5 * one_item


# ---------------------------------------------------------------- reads
def test_values_are_identical_with_and_without_deltas(saver, thread_ids, config, new_checkpoint):
    with_deltas = _grow(saver, config, thread_ids(), new_checkpoint, FANOUT + 40)
    plain_thread = thread_ids()
    plain = _grow(saver, config, plain_thread, new_checkpoint, FANOUT + 40, hint=False)

    for (cfg, cp), (plain_cfg, _) in zip(with_deltas, plain):
        assert _values(saver, cfg) == _values(saver, plain_cfg) == cp["channel_values"]
    thread = with_deltas[0][0]["configurable"]["thread_id"]
    listed = [t.checkpoint["channel_values"] for t in saver.list(config(thread))]
    assert listed == [t.checkpoint["channel_values"] for t in saver.list(config(plain_thread))]
    assert listed == [cp["channel_values"] for _cfg, cp in reversed(with_deltas)]
    page = list(saver.list(config(thread), before=with_deltas[50][0], limit=3))
    assert [t.checkpoint["channel_values"] for t in page] == [with_deltas[i][1]["channel_values"] for i in (49, 48, 47)]


def test_channels_not_rewritten_keep_their_chain(saver, thread_id, config, new_checkpoint):
    steps = _grow(saver, config, thread_id, new_checkpoint, 10)
    cfg, cp = steps[-1]
    for i in range(3):  # steps that only touch "step"
        cfg, cp = _step(saver, cfg, cp, new_checkpoint, values={"step": 100 + i})
    cfg, cp = _step(saver, cfg, cp, new_checkpoint, append=["last"])

    assert _values(saver, cfg) == cp["channel_values"]
    assert _values(saver, cfg)["items"][-2:] == [steps[-1][1]["channel_values"]["items"][-1], "last"]


def test_branches_forked_from_one_checkpoint_keep_their_own_items(saver, thread_id, config, new_checkpoint):
    steps = _grow(saver, config, thread_id, new_checkpoint, 20)
    fork_cfg, fork = steps[10]
    a = b = (fork_cfg, fork)
    a_steps, b_steps = [], []
    for i in range(2 * FANOUT):  # interleaved, so the branches' versions interleave too
        a = _step(saver, *a, new_checkpoint, append=[f"a{i}"])
        b = _step(saver, *b, new_checkpoint, append=[f"b{i}"])
        a_steps.append(a)
        b_steps.append(b)

    base = fork["channel_values"]["items"]
    assert _values(saver, a[0])["items"] == base + [f"a{i}" for i in range(2 * FANOUT)]
    assert _values(saver, b[0])["items"] == base + [f"b{i}" for i in range(2 * FANOUT)]
    for cfg, cp in a_steps + b_steps + steps:
        assert _values(saver, cfg) == cp["channel_values"]
    history = {t.config["configurable"]["checkpoint_id"]: t.checkpoint["channel_values"] for t in saver.list(config(thread_id))}
    assert history == {cp["id"]: cp["channel_values"] for _cfg, cp in a_steps + b_steps + steps}


def test_history_with_many_branches_reads_back(saver, thread_id, config, new_checkpoint, monkeypatch):
    """Forks, each starting its own chain: a history batch needs more chain
    ranges and versions than one SQL statement may hold (limits made small)."""
    monkeypatch.setattr(sql_chains, "_ARMS_PER_QUERY", 4)
    monkeypatch.setattr(sql_chains, "_BINDS_PER_QUERY", 30)
    monkeypatch.setattr(sql_chains, "_IN_BATCH", 7)
    trunk = _grow(saver, config, thread_id, new_checkpoint, 3 * FANOUT)
    expected = {cp["id"]: cp["channel_values"] for _cfg, cp in trunk}
    for i, (fork_cfg, fork) in enumerate(trunk):
        items = fork["channel_values"]["items"]
        head = _step(saver, fork_cfg, fork, new_checkpoint, values={"items": items[:-1] + [f"replaced {i}"]})
        expected[head[1]["id"]] = head[1]["channel_values"]
        for j in range(3):
            head = _step(saver, *head, new_checkpoint, append=[f"fork {i}.{j}"])
            expected[head[1]["id"]] = head[1]["channel_values"]

    listed = {t.config["configurable"]["checkpoint_id"]: t.checkpoint["channel_values"] for t in saver.list(config(thread_id))}

    assert listed == expected


def test_a_list_that_shrinks_or_changes_is_stored_whole_and_reads_back(saver, thread_id, config, new_checkpoint, blob_rows):
    steps = _grow(saver, config, thread_id, new_checkpoint, 12)
    cfg, cp = steps[-1]
    items = cp["channel_values"]["items"]
    cfg_changed, cp_changed = _step(saver, cfg, cp, new_checkpoint, values={"items": items[:3] + ["changed"] + items[4:]})
    cfg_shrunk, cp_shrunk = _step(saver, cfg_changed, cp_changed, new_checkpoint, values={"items": items[:5]})
    cfg_next, cp_next = _step(saver, cfg_shrunk, cp_shrunk, new_checkpoint, append=["after"])

    rows = blob_rows(thread_id)
    assert rows[("items", cp_changed["channel_versions"]["items"])][0] is None
    assert rows[("items", cp_shrunk["channel_versions"]["items"])][0] is None
    assert rows[("items", cp_next["channel_versions"]["items"])][0] == cp_shrunk["channel_versions"]["items"]
    for c, expected in ((cfg_changed, cp_changed), (cfg_shrunk, cp_shrunk), (cfg_next, cp_next), steps[5]):
        assert _values(saver, c) == expected["channel_values"]


def test_a_previous_list_mutated_in_place_is_not_trusted(saver, thread_id, config, new_checkpoint, blob_rows):
    steps = _grow(saver, config, thread_id, new_checkpoint, 3)
    cfg, cp = steps[-1]
    held = {**cp, "channel_values": {**cp["channel_values"], "items": cp["channel_values"]["items"]}}
    held["channel_values"]["items"].append("sneaked in")  # a node mutated the state list in place
    child = new_checkpoint({"items": held["channel_values"]["items"] + ["new"]}, {"items": saver.get_next_version("7")})
    child_cfg = saver.put(cfg, child, {}, dict(child["channel_versions"]), previous=held)

    assert blob_rows(thread_id)[("items", child["channel_versions"]["items"])][0] is None
    assert _values(saver, child_cfg)["items"][-2:] == ["sneaked in", "new"]


def test_versions_that_do_not_sort_as_strings_still_read_back(saver, thread_id, config, new_checkpoint):
    """Chain ranges assume versions sort like get_next_version's; other
    versions cost extra queries, never a wrong value."""
    parent_cfg, parent = config(thread_id), {"id": None, "channel_values": {}, "channel_versions": {}}
    steps = []
    for i in range(FANOUT + 12):
        version = str(9 + i)  # "9" > "10" as strings
        cp = new_checkpoint({"items": parent["channel_values"].get("items", []) + [i]}, {"items": version})
        parent_cfg = saver.put(parent_cfg, cp, {}, {"items": version}, previous={**parent, "channel_versions": {"items": version}})
        parent = cp
        steps.append((parent_cfg, cp))

    for cfg, cp in steps:
        assert _values(saver, cfg) == cp["channel_values"]
    assert [t.checkpoint["channel_values"] for t in saver.list(config(thread_id))] == [cp["channel_values"] for _c, cp in reversed(steps)]


def test_deleted_thread_leaves_no_chain_to_build_on(saver, thread_id, config, new_checkpoint, blob_rows):
    steps = _grow(saver, config, thread_id, new_checkpoint, 4)
    cfg, cp = steps[-1]
    saver.delete_thread(thread_id)

    child_cfg, child = _step(saver, cfg, cp, new_checkpoint, append=["again"])

    assert blob_rows(thread_id)[("items", child["channel_versions"]["items"])][0] is None
    # "items" was written whole; "step" was not rewritten, but a small
    # primitive value travels in every checkpoint row, so it is still there.
    kept = {"step": 3} if isinstance(saver, SQLCheckpointSaver) else {}
    assert _values(saver, child_cfg) == {"items": child["channel_values"]["items"], **kept}


@pytest.mark.asyncio
async def test_async_reads_rebuild_deltas(saver, thread_id, config, new_checkpoint):
    steps = _grow(saver, config, thread_id, new_checkpoint, 40)

    assert (await saver.aget_tuple(steps[-1][0])).checkpoint == steps[-1][1]
    assert [t.checkpoint async for t in saver.alist(config(thread_id), limit=2)] == [cp for _c, cp in steps[:-3:-1]]


# ------------------------------------------------------- through a graph
class ListState(TypedDict):
    items: Annotated[list, operator.add]


def _message_graph(limit: int):
    def agent(state: MessagesState) -> dict:
        n = len(state["messages"])
        return {"messages": [AIMessage(f"answer {n} " + "x" * 200, id=f"ai-{n}")]}

    def route(state: MessagesState) -> str:
        return END if len(state["messages"]) >= limit else "agent"

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route)
    return g


def _history(app, cfg) -> list[tuple[Any, ...]]:
    return [
        (s.values, s.next, s.metadata.get("step"), s.metadata.get("source"), s.tasks and [t.name for t in s.tasks])
        for s in app.get_state_history(cfg)
    ]


def _run_conversation(checkpointer, thread_id: str) -> tuple[Any, list]:
    """A 70-step conversation, a replay from step 20, a fork that replaces a
    message by id and one that removes a message; returns the app and the
    configs of everything it did."""
    app = _message_graph(70).compile(checkpointer=checkpointer)
    cfg = {"configurable": {"thread_id": thread_id}, "recursion_limit": 1000}
    app.invoke({"messages": [HumanMessage("hi", id="h-0")]}, cfg)
    history = list(app.get_state_history(cfg))
    at_20 = next(s for s in history if s.metadata["step"] == 20).config
    replayed = app.invoke(None, {**cfg, "configurable": {**at_20["configurable"]}})
    edited = app.update_state(at_20, {"messages": [AIMessage("edited", id="ai-5")]})
    app.invoke(None, {**cfg, "configurable": edited["configurable"]})
    removed = app.update_state(at_20, {"messages": [RemoveMessage(id="ai-7")]})
    grown = app.update_state(removed, {"messages": [AIMessage("after removal", id="extra")]})
    return app, [replayed, edited, removed, grown]


def test_a_conversation_reads_back_the_same_with_and_without_deltas(saver, thread_ids, blob_rows):
    plain_thread, delta_thread = thread_ids(), thread_ids()
    plain_app, plain_results = _run_conversation(WithoutHint(saver), plain_thread)
    delta_app, delta_results = _run_conversation(saver, delta_thread)

    def cfg(thread):
        return {"configurable": {"thread_id": thread}}

    assert _history(delta_app, cfg(delta_thread)) == _history(plain_app, cfg(plain_thread))
    assert delta_app.get_state(cfg(delta_thread)).values == plain_app.get_state(cfg(plain_thread)).values
    assert delta_results[0] == plain_results[0]  # the replay's output
    for delta_cfg, plain_cfg in zip(delta_results[1:], plain_results[1:]):
        assert delta_app.get_state(delta_cfg).values == plain_app.get_state(plain_cfg).values
    rows = blob_rows(delta_thread)
    deltas = [key for key, (base, _size) in rows.items() if key[0] == "messages" and base is not None]
    assert len(deltas) > 60  # the conversation really was stored as deltas
    assert all(base is None for key, (base, _s) in blob_rows(plain_thread).items())


def test_operator_add_lists_are_stored_as_deltas(saver, thread_id, blob_rows):
    def add(state: ListState) -> dict:
        return {"items": [len(state["items"])]}

    g = StateGraph(ListState)
    g.add_node("add", add)
    g.add_edge(START, "add")
    g.add_conditional_edges("add", lambda s: END if len(s["items"]) >= 40 else "add")
    app = g.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": thread_id}, "recursion_limit": 1000}

    assert app.invoke({"items": []}, cfg) == {"items": list(range(40))}
    assert [s.values["items"] for s in app.get_state_history(cfg)][:3] == [
        list(range(40)), list(range(39)), list(range(38))
    ]  # fmt: skip
    assert sum(1 for key, (base, _s) in blob_rows(thread_id).items() if key[0] == "items" and base) >= 38


# ------------------------------------------------------------- SQL only
SQL_STORES = ["sqlite_memory", "sqlite_file", pytest.param("postgres", marks=pytest.mark.integration)]
SQL_FILE_STORES = ["sqlite_file", pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.mark.parametrize("saver", SQL_STORES, indirect=True)
def test_a_checkpoint_is_read_with_one_blob_query(saver, thread_id, config, new_checkpoint):
    steps = _grow(saver, config, thread_id, new_checkpoint, 2 * FANOUT + 10)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if "FROM lgdist_blobs" in statement:
            statements.append(statement)

    CACHE.clear()  # a cold read: another process, or values evicted
    sa.event.listen(saver.engine, "after_cursor_execute", count)
    try:
        tup = saver.get_tuple(steps[-1][0])
        cold = len(statements)
        warm = saver.get_tuple(steps[-1][0])
    finally:
        sa.event.remove(saver.engine, "after_cursor_execute", count)

    assert tup.checkpoint == steps[-1][1] == warm.checkpoint
    assert cold == 1
    assert len(statements) == 1, "a warm read decodes no blob again"


@pytest.mark.parametrize("saver", SQL_FILE_STORES, indirect=True)
def test_a_new_store_on_the_same_database_continues_the_chain(saver, thread_id, config, new_checkpoint, blob_rows):
    steps = _grow(saver, config, thread_id, new_checkpoint, 5)
    cfg, cp = steps[-1]
    with type(saver)(sa.create_engine(saver.engine.url)) as fresh:  # another process: no cached links
        child_cfg, child = _step(fresh, cfg, cp, new_checkpoint, append=["from another process"])
        assert fresh.get_tuple(child_cfg).checkpoint == child

    assert blob_rows(thread_id)[("items", child["channel_versions"]["items"])][0] == cp["channel_versions"]["items"]


@pytest.mark.parametrize("saver", SQL_STORES, indirect=True)
def test_rows_without_chain_links_are_still_followed(saver, thread_id, config, new_checkpoint):
    steps = _grow(saver, config, thread_id, new_checkpoint, FANOUT + 5)
    with saver.engine.begin() as conn:  # as if the links had been lost
        conn.execute(sa.update(checkpoints_table).where(checkpoints_table.c.thread_id == thread_id).values(value_chains=None))

    for cfg, cp in steps[::7] + steps[-1:]:
        assert _values(saver, cfg) == cp["channel_values"]
