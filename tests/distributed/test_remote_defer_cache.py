"""``defer=True`` and cached nodes on real workers: the same results and
stream as the local runtime. A cached node's entry lives in one worker
process, so a remote hit is not guaranteed; what must hold is that a hit or
a miss gives the same state and exactly one updates chunk per task."""

from __future__ import annotations

import uuid

import pytest

from lgdist.checkpoint.memory import InMemorySaver
from lgdist.client import RemoteGraph
from workers import examples

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def _thread() -> dict:
    return {"configurable": {"thread_id": f"defer-cache-{uuid.uuid4().hex[:12]}"}}


def test_deferred_node_runs_once_after_every_branch_remotely(cluster, client):
    local = examples.build_deferred().compile(checkpointer=InMemorySaver())
    remote = RemoteGraph("deferred", client=client)
    local_thread = _thread()
    want = list(local.stream({"log": []}, local_thread, stream_mode="updates"))
    thread = _thread()
    got = list(remote.stream({"log": []}, thread, stream_mode="updates"))
    # One step's chunks come in task order remotely; b and c share a step.
    assert got == want
    assert got[-1] == {"d": {"log": ["summary:a,b,c,b2"]}}
    assert remote.get_state(thread).values == local.get_state(local_thread).values


def test_cached_node_gives_the_same_state_hit_or_miss_remotely(cluster, client):
    remote = RemoteGraph("cached", client=client)
    pids = []
    for _ in range(4):
        thread = _thread()
        chunks = list(remote.stream({"log": []}, thread, stream_mode="updates"))
        values = remote.get_state(thread).values
        # One chunk per task (a hit's chunk is streamed when the step
        # finishes, like every remote task's; without the cached marker).
        assert [list(c) for c in chunks] == [["expensive"], ["after"]], chunks
        assert chunks[0]["expensive"]["log"] == ["expensive:0"]
        assert chunks[1] == {"after": {"log": ["after"]}}
        assert values["log"] == ["expensive:0", "after"]
        pids.extend(values["pids"])
    assert len(pids) == 4


def test_a_remote_cache_hit_skips_the_node(cluster, client):
    """Entries are per process: submit until a run is planned in a process
    that stored the entry (the node then does not run on any worker)."""
    runs = []

    def hit() -> bool:
        thread_id = cluster.thread_id("cached")
        run_id = client.submit("cached", {"log": []}, thread_id)
        assert cluster.wait_run(run_id)["status"] == "success"
        ran = [r["node"] for r in client.workers_of(run_id)]
        runs.append((ran, client.get_state("cached", thread_id).values))
        return "expensive" not in ran

    cluster.wait_for(hit, timeout=90, what="a run whose cached node came from the cache")
    ran, values = runs[-1]
    assert "after" in ran
    # The hit replays the writes of an earlier run, pid and all.
    assert values["log"] == ["expensive:0", "after"]
    assert values["pids"][0] in [v["pids"][0] for _, v in runs[:-1]] or len(runs) == 1
