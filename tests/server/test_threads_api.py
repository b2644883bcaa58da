"""Threads over the SDK: create (``if_exists``), get, patch, search, count,
copy, delete; state at a checkpoint, ``update_state`` with ``as_node`` and
a fork, history with ``limit``/``before``/``metadata``."""

from __future__ import annotations

import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def test_create_with_if_exists_get_patch_delete(sdk, server):
    tid = server.thread_id("crud")
    created = sdk.threads.create(thread_id=tid, metadata={"owner": "ann"})
    assert created["thread_id"] == tid and created["metadata"] == {"owner": "ann"} and created["status"] == "idle"
    with pytest.raises(ConflictError):
        sdk.threads.create(thread_id=tid)
    again = sdk.threads.create(thread_id=tid, if_exists="do_nothing", metadata={"owner": "bob"})
    assert again["metadata"] == {"owner": "ann"}
    patched = sdk.threads.update(tid, metadata={"tier": "gold"})
    assert patched["metadata"] == {"owner": "ann", "tier": "gold"}
    assert sdk.threads.get(tid)["metadata"] == {"owner": "ann", "tier": "gold"}
    sdk.threads.delete(tid)
    with pytest.raises(NotFoundError):
        sdk.threads.get(tid)


def test_search_and_count(sdk, server):
    tag = server.thread_id("tag")
    ids = [sdk.threads.create(metadata={"tag": tag, "i": i})["thread_id"] for i in range(3)]
    sdk.runs.wait(ids[0], "approval", input={"request": "x"})  # interrupted
    found = sdk.threads.search(metadata={"tag": tag}, limit=10)
    assert sorted(t["thread_id"] for t in found) == sorted(ids)
    assert [t["thread_id"] for t in sdk.threads.search(metadata={"tag": tag}, status="interrupted")] == [ids[0]]
    assert [t["thread_id"] for t in sdk.threads.search(metadata={"tag": tag, "i": 2})] == [ids[2]]
    assert len(sdk.threads.search(metadata={"tag": tag}, limit=2)) == 2
    assert len(sdk.threads.search(metadata={"tag": tag}, limit=2, offset=2)) == 1
    assert sdk.threads.search(values={"request": "x"}, metadata={"tag": tag})[0]["thread_id"] == ids[0]
    assert sdk.threads.count(metadata={"tag": tag}) == 3
    assert sdk.threads.count(metadata={"tag": tag}, status="idle") == 2


def test_copy_keeps_state_and_history(sdk):
    tid = sdk.threads.create()["thread_id"]
    sdk.runs.wait(tid, "approval", input={"request": "copy me"})
    copy = sdk.threads.copy(tid)
    assert copy["thread_id"] != tid
    original, copied = sdk.threads.get_state(tid), sdk.threads.get_state(copy["thread_id"])
    assert copied["values"] == original["values"] and copied["next"] == original["next"] == ["ask"]
    assert len(sdk.threads.get_history(copy["thread_id"])) == len(sdk.threads.get_history(tid))
    # The copy resumes on its own; the original is untouched.
    assert sdk.runs.wait(copy["thread_id"], "approval", command={"resume": "ok"})["decision"] == "ok"
    assert sdk.threads.get_state(tid)["next"] == ["ask"]


def test_history_filters(sdk):
    tid = sdk.threads.create()["thread_id"]
    sdk.runs.wait(tid, "counter", input={"n": 0})
    history = sdk.threads.get_history(tid, limit=100)
    steps = [h["metadata"]["step"] for h in history]
    assert steps == list(range(len(steps) - 2, -2, -1))  # newest first, down to -1
    assert len(sdk.threads.get_history(tid, limit=2)) == 2
    before = history[1]["checkpoint"]
    older = sdk.threads.get_history(tid, before=before, limit=100)
    assert [h["metadata"]["step"] for h in older] == steps[2:]
    only_input = sdk.threads.get_history(tid, metadata={"source": "input"})
    assert [h["metadata"]["step"] for h in only_input] == [-1]
    assert [h["metadata"]["step"] for h in sdk.threads.get_history(tid, metadata={"step": 2})] == [2]
    at = sdk.threads.get_state(tid, checkpoint_id=history[2]["checkpoint_id"])
    assert at["values"] == history[2]["values"]
    at = sdk.threads.get_state(tid, checkpoint=history[3]["checkpoint"])
    assert at["checkpoint_id"] == history[3]["checkpoint_id"]


def test_update_state_as_node_and_fork(sdk):
    tid = sdk.threads.create()["thread_id"]
    sdk.runs.wait(tid, "approval", input={"request": "deploy"})
    paused = sdk.threads.get_state(tid)
    assert sdk.runs.wait(tid, "approval", command={"resume": "yes"})["decision"] == "yes"

    # Answering the same interrupt again from its (older) checkpoint forks
    # the thread there and ends, as in LangGraph: the task answered the
    # first time has saved writes at that checkpoint, and they stand.
    answered = sdk.threads.get_state(tid)["checkpoint_id"]
    branch = sdk.runs.wait(tid, "approval", command={"resume": "no"}, checkpoint_id=paused["checkpoint_id"])
    assert branch["decision"] == "yes"
    assert sdk.threads.get_state(tid)["checkpoint_id"] != answered
    children = [
        s for s in sdk.threads.get_history(tid, limit=100)
        if (s.get("parent_checkpoint") or {}).get("checkpoint_id") == paused["checkpoint_id"]
    ]
    assert len(children) == 2  # the first answer's branch and this one

    # Fork: a new input from the thread's first checkpoint.
    first = sdk.threads.get_history(tid, metadata={"step": -1})[0]
    forked = sdk.runs.wait(tid, "approval", input={"request": "rollback"}, checkpoint_id=first["checkpoint_id"])
    assert forked["__interrupt__"][0]["value"] == {"question": "approve rollback?"}
    state = sdk.threads.get_state(tid)
    assert state["values"]["request"] == "rollback" and state["next"] == ["ask"]
    assert sdk.runs.wait(tid, "approval", command={"resume": "no"})["log"] == ["asked", "acted:no"]

    # update_state as the interrupted node, from the paused checkpoint.
    result = sdk.threads.update_state(
        tid, {"decision": "by hand", "log": ["edited"]}, as_node="ask", checkpoint_id=paused["checkpoint_id"]
    )
    assert result["checkpoint"]["checkpoint_id"]
    state = sdk.threads.get_state(tid)
    assert state["next"] == ["act"] and state["values"]["decision"] == "by hand"
    assert state["parent_checkpoint"]["checkpoint_id"] == paused["checkpoint_id"]
    final = sdk.runs.wait(tid, "approval", input=None)
    assert final["log"] == ["edited", "acted:by hand"]
