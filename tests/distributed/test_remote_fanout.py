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
