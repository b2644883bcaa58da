"""``RemoteGraph`` on real workers where it used to differ from a compiled
graph: the node's own exception class on failure, resumes recorded as
resumes, ``aget_state_history``, its keyword arguments, ``get_graph()`` and
``stream(..., subgraphs=True)``."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest

from lgdist.checkpoint.memory import InMemorySaver
from lgdist.client import RemoteGraph, RunFailedError
from lgdist.types import Command
from workers import examples, nested

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def thread(prefix: str = "api") -> dict:
    return {"configurable": {"thread_id": f"{prefix}-{uuid.uuid4().hex[:12]}"}}


def _caught(fn: Any) -> BaseException:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the exception is the observation
        return exc
    raise AssertionError("nothing raised")


def test_failed_remote_run_raises_the_nodes_builtin_exception_class(cluster, client):
    local = _caught(lambda: examples.build_failing().compile().invoke({"n": 0}))
    remote = _caught(lambda: RemoteGraph("failing", client=client).invoke({"n": 0}, thread()))
    assert type(local) is ValueError
    assert isinstance(remote, ValueError) and isinstance(remote, RunFailedError)
    assert str(remote) == str(local) == "the node failed on purpose"
    assert remote.args == local.args
    assert "Traceback (most recent call last)" in remote.remote_traceback
    assert "in _boom" in remote.remote_traceback and "node 'boom' failed" in remote.remote_traceback
    assert any("remote traceback" in note for note in remote.__notes__)
    with pytest.raises(ValueError, match="on purpose"):  # the except clause a LangGraph user wrote
        RemoteGraph("failing", client=client).invoke({"n": 0}, thread())


def test_failed_remote_run_raises_the_graphs_own_exception_class(cluster, client):
    local = _caught(lambda: nested.build().compile().invoke({"topic": "forbidden"}))
    remote = _caught(lambda: RemoteGraph("nested", client=client).invoke({"topic": "forbidden"}, thread()))
    assert type(local) is nested.TopicError
    assert isinstance(remote, nested.TopicError) and isinstance(remote, ValueError)
    assert isinstance(remote, RunFailedError)
    assert str(remote) == str(local) == "topic 'forbidden' is not allowed"
    run = client.runs(limit=1)[0]
    assert run["status"] == "error" and "workers.nested.TopicError" in run["error"]


def test_failure_that_is_not_a_node_exception_stays_a_run_failed_error(cluster, client):
    error = _caught(lambda: RemoteGraph("no-such-graph", client=client).invoke({}, thread()))
    assert type(error) is RunFailedError
    assert "is not registered on this worker" in str(error) and "is not registered" in error.remote_traceback


def test_resume_through_remote_graph_is_recorded_as_a_resume(cluster, client):
    remote = RemoteGraph("approval", client=client)
    config = thread("resume")
    first = remote.invoke({"request": "refund"}, config)
    assert [i.value for i in first["__interrupt__"]] == [{"question": "approve refund?"}]
    done = remote.invoke(Command(resume="yes"), config)
    assert done["log"] == ["asked", "acted:yes"]
    runs = client.runs(config["configurable"]["thread_id"])
    assert [r["kind"] for r in reversed(runs)] == ["start", "resume"]
    assert all(r["status"] == "success" or r["status"] == "interrupted" for r in runs)


def test_aget_state_history_matches_get_state_history(cluster, client):
    remote = RemoteGraph("counter", client=client)
    config = thread("hist")
    remote.invoke({"n": 0}, config)

    async def collect(**kwargs: Any) -> list:
        return [s async for s in remote.aget_state_history(config, **kwargs)]

    history = list(remote.get_state_history(config))
    assert len(history) > 2
    assert [s.config for s in asyncio.run(collect())] == [s.config for s in history]
    assert [s.config for s in asyncio.run(collect(limit=2))] == [s.config for s in history[:2]]
    before = asyncio.run(collect(before=history[1].config))
    assert [s.config for s in before] == [s.config for s in history[2:]]
    assert [s.metadata["step"] for s in asyncio.run(collect(filter={"step": 1}))] == [1]


def test_remote_graph_honours_its_keyword_arguments(cluster, client):
    # Settings build the graph's own client (here: the cluster's, spelled out).
    settings = {
        "broker_url": cluster.env["LGDIST_BROKER_URL"],
        "database_url": cluster.env["LGDIST_DATABASE_URL"],
        "graphs": cluster.env["LGDIST_GRAPHS"],
        "default_queue": cluster.env["LGDIST_DEFAULT_QUEUE"],
        "home": cluster.env["LGDIST_HOME"],
    }
    own = RemoteGraph("counter", **settings)
    assert own.client is not client and own.client.settings.default_queue == settings["default_queue"]
    config = thread("kw")
    assert own.invoke({"n": 3}, config) == examples.build_counter().compile().invoke({"n": 3})
    # config= is merged under every call's config: here it names the thread.
    pinned = RemoteGraph("counter", client=client, config=config)
    assert pinned.get_state({}).values == own.get_state(config).values
    with pytest.raises(TypeError, match="unknown settings"):
        RemoteGraph("counter", url="http://localhost:2024")
    with pytest.raises(TypeError, match="not both"):
        RemoteGraph("counter", client=client, broker_url="redis://x")


def test_remote_get_graph_is_the_registered_graphs_structure(cluster, client):
    local = nested.build().compile().get_graph()
    remote = RemoteGraph("nested", client=client).get_graph()
    assert sorted(remote.nodes) == sorted(local.nodes) == ["__end__", "__start__", "child", "finish", "prepare"]
    edges = lambda g: sorted((e.source, e.target, e.conditional) for e in g.edges)  # noqa: E731
    assert edges(remote) == edges(local)
    assert remote.draw_mermaid() == local.draw_mermaid()
    xray = RemoteGraph("nested", client=client).get_graph(xray=True)
    assert sorted(xray.nodes) == sorted(nested.build().compile().get_graph(xray=True).nodes)
    assert asyncio.run(RemoteGraph("nested", client=client).aget_graph()).to_json() == local.to_json()


def _numbered(chunks: list) -> list:
    """Namespaces' task ids numbered by first appearance."""
    seen: dict[str, str] = {}
    return [
        eval(_UUID.sub(lambda m: seen.setdefault(m.group(0), f"id{len(seen)}"), repr(c)))  # noqa: S307 - our own reprs
        for c in chunks
    ]


@pytest.mark.parametrize("mode", ["updates", "values", ("updates", "custom", "values")], ids=str)
def test_remote_stream_with_subgraphs_carries_the_subgraphs_chunks(cluster, client, mode):
    stream_mode = list(mode) if isinstance(mode, tuple) else mode
    local = nested.build().compile(checkpointer=InMemorySaver())
    want = _numbered(list(local.stream({"topic": "t"}, thread(), stream_mode=stream_mode, subgraphs=True)))
    remote = RemoteGraph("nested", client=client)
    got = _numbered(list(remote.stream({"topic": "t"}, thread(), stream_mode=stream_mode, subgraphs=True)))
    assert got == want
    assert any(chunk[0] != () for chunk in got), "no subgraph chunk at all"
    # Without subgraphs=True the same run shows only the root's chunks.
    plain = list(remote.stream({"topic": "t"}, thread(), stream_mode=stream_mode))
    assert plain == list(local.stream({"topic": "t"}, thread(), stream_mode=stream_mode))


def test_async_twins_match_the_sync_api(cluster, client):
    remote = RemoteGraph("approval", client=client)
    config = thread("async")

    async def run() -> dict:
        chunks = [c async for c in remote.astream({"request": "refund"}, config, stream_mode="updates")]
        paused = await remote.aget_state(config)
        await remote.aupdate_state(config, {"request": "refund twice"})
        done = await remote.ainvoke(Command(resume="no"), config)
        return {"chunks": chunks, "paused": paused, "done": done, "final": await remote.aget_state(config)}

    got = asyncio.run(run())
    assert [list(c) for c in got["chunks"]] == [["__interrupt__"]]
    assert got["paused"].next == ("ask",) and got["paused"].values["request"] == "refund"
    assert got["done"]["log"] == ["asked", "acted:no"] and got["done"]["request"] == "refund twice"
    assert got["final"].values == remote.get_state(config).values and got["final"].next == ()
