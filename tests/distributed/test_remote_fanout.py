"""``Send`` fan-out: one step's tasks spread over several worker processes."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(90)]


def test_fanout_results_are_correct_and_tasks_ran_in_more_than_one_worker_process(cluster, client):
    items = list(range(1, 9))
    thread_id = cluster.thread_id("fanout")
    run_id = client.submit("fanout", {"items": items}, thread_id)
    assert cluster.wait_run(run_id)["status"] == "success"

    values = client.get_state("fanout", thread_id).values
    doubled = [2 * i for i in items]
    assert sorted(values["results"][:-1]) == doubled
    assert values["results"][-1] == sum(doubled)

    # The pids the nodes recorded in the state, and the lgdist:worker events.
    pids = values["workers"]
    assert len(pids) == len(items)
    assert len(set(pids)) > 1, f"all {len(items)} tasks ran in one process: {pids}"
    assert not set(pids) & cluster.worker_pids(), "prefork: nodes run in pool children, not the main process"
    ran = client.workers_of(run_id)
    work = [r for r in ran if r["node"] == "work"]
    assert len(work) == len(items) and all(r["status"] == "ok" for r in work)
    assert len({r["worker"] for r in work}) > 1, work
    assert {r["node"] for r in ran} == {"__start__", "split", "work", "join"}
    cluster.assert_linear_history(cluster.history("fanout", thread_id))
    cluster.assert_thread_sound(thread_id)


def test_invoke_reads_a_wide_runs_events_once_it_is_over(cluster, client, monkeypatch):
    """``invoke`` wants the outcome, not the events as they come: it waits
    for the run's end and reads the stream once, where ``stream`` wakes for
    each of the wide step's task events."""
    from lgdist.client import RemoteGraph

    items = list(range(1, 9))
    redis = client.backend.bus.redis
    reads = []
    xread = redis.xread
    monkeypatch.setattr(redis, "xread", lambda *a, **k: reads.append(1) or xread(*a, **k))

    remote = RemoteGraph("fanout", client=client)
    result = remote.invoke({"items": items}, {"configurable": {"thread_id": cluster.thread_id("inv")}})
    doubled = [2 * i for i in items]
    assert sorted(result["results"][:-1]) == doubled and result["results"][-1] == sum(doubled)
    assert len(reads) == 1, f"{len(reads)} stream reads"

    reads.clear()
    config = {"configurable": {"thread_id": cluster.thread_id("str")}}
    chunks = list(remote.stream({"items": items}, config, stream_mode="values"))
    assert chunks[-1]["results"][-1] == sum(doubled)
    assert len(reads) > 1  # stream is live
