"""The async ``langgraph-sdk`` client (``get_client``) over the same calls:
threads, state, history, background runs, join, cancel, multitask, store,
assistants."""

from __future__ import annotations

import asyncio

import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


async def _until(predicate, timeout: float = 60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def test_threads_runs_and_state(asdk, server):
    thread = await asdk.threads.create(metadata={"suite": "async"})
    tid = thread["thread_id"]
    run = await asdk.runs.create(tid, "approval", input={"request": "async"})
    paused = await asdk.runs.join(tid, run["run_id"])
    assert paused["__interrupt__"][0]["value"] == {"question": "approve async?"}
    assert (await asdk.threads.get(tid))["status"] == "interrupted"
    assert [t["thread_id"] for t in await asdk.threads.search(metadata={"suite": "async"}, status="interrupted")] == [tid]
    assert await asdk.threads.count(metadata={"suite": "async"}) >= 1

    await asdk.threads.update_state(tid, {"decision": "via update"}, as_node="ask")
    state = await asdk.threads.get_state(tid)
    assert state["next"] == ["act"] and state["values"]["decision"] == "via update"
    final = await asdk.runs.wait(tid, "approval", input=None)
    assert final["log"] == ["acted:via update"]
    history = await asdk.threads.get_history(tid, limit=2)
    assert len(history) == 2 and history[0]["next"] == []
    runs = await asdk.runs.list(tid)
    assert [r["status"] for r in runs] == ["success", "interrupted"]
    assert (await asdk.runs.get(tid, runs[-1]["run_id"]))["run_id"] == run["run_id"]
    with pytest.raises(NotFoundError):
        await asdk.threads.get(f"{tid}-missing")


async def test_busy_thread_cancel_and_reject(asdk):
    tid = (await asdk.threads.create())["thread_id"]
    run = await asdk.runs.create(tid, "slow", input={"n": 0})

    async def at_slow_step():
        return (await asdk.threads.get_state(tid))["values"].get("n") == 2

    await _until(at_slow_step)
    with pytest.raises(ConflictError):
        await asdk.runs.create(tid, "slow", input={"n": 0}, multitask_strategy="reject")
    await asdk.runs.cancel(tid, run["run_id"])

    async def cancelled():
        return (await asdk.runs.get(tid, run["run_id"]))["status"] == "interrupted"

    await _until(cancelled)


async def test_assistants_and_store(asdk, server):
    found = await asdk.assistants.search(graph_id="counter")
    assert [a["name"] for a in found] == ["counter"]
    graph = await asdk.assistants.get_graph(found[0]["assistant_id"])
    assert {e["source"] for e in graph["edges"]} >= {"__start__", "step"}
    namespace = ["async-suite", server.thread_id("ns")]
    await asdk.store.put_item(namespace, "k", {"text": "kept"})
    assert (await asdk.store.get_item(namespace, "k"))["value"] == {"text": "kept"}
    assert (await asdk.store.search_items(namespace))["items"][0]["key"] == "k"
