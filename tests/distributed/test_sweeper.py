"""The sweeper repairs stalled runs and nothing else: a step waiting in a
queue behind other work is not stalled, and concurrent sweeps repair one
stalled step once."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from lgdist.distributed import lifecycle
from lgdist.distributed.runs import threads_table
from lgdist.distributed.sweeper import sweep

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(180)]


def test_steps_waiting_in_a_queue_are_not_taken_for_stalled(cluster, client):
    """No fault at all: more fan-out work than the two workers can take at
    once, so steps wait in the queue for several seconds. A sweep that
    calls a thread stalled after one second must still find nothing to
    repair - before, it re-sent every queued step."""
    threads = [cluster.thread_id("backlog") for _ in range(8)]
    runs = [client.submit("fanout", {"items": [1, 2, 3, 4]}, t) for t in threads]
    repaired: list[str] = []
    sweeps = 0
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        statuses = [client.get_run(r)["status"] for r in runs]
        if all(s not in ("pending", "running") for s in statuses):
            break
        repaired += sweep(client.backend, older_than=1.0)
        sweeps += 1
        time.sleep(0.2)
    assert sweeps >= 5, "the work finished before the queue backed up; the test proves nothing"
    assert repaired == []
    for run_id, thread_id in zip(runs, threads):
        assert cluster.wait_run(run_id)["status"] == "success"
        assert client.get_state("fanout", thread_id).values["results"][-1] == 20
        cluster.assert_thread_sound(thread_id)


def test_concurrent_sweeps_repair_a_stalled_run_once(cluster, client):
    """A run whose start message was lost (it holds its thread, nothing
    queued, no progress): four sweeps at once send one start between them."""
    thread_id = cluster.thread_id("lost-start")
    run, claimed = lifecycle.submit(
        client.backend.runs, thread_id=thread_id, graph="counter", kind="start", input={"n": 0},
        options={"stream_modes": ["values"]},
    )  # fmt: skip
    assert claimed
    with client.backend.runs.engine.begin() as conn:  # its lease went stale
        conn.execute(sa.update(threads_table).where(threads_table.c.thread_id == thread_id).values(updated_at=time.time() - 60))
    results: list[list[str]] = []
    barrier = threading.Barrier(4)

    def one_sweep() -> None:
        barrier.wait()
        results.append(sweep(client.backend, older_than=30.0))

    workers = [threading.Thread(target=one_sweep) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert sorted(len([t for t in r if t == thread_id]) for r in results) == [0, 0, 0, 1]
    assert cluster.wait_run(run.run_id)["status"] == "success"
    assert client.get_state("counter", thread_id).values["n"] == 5
    cluster.assert_thread_sound(thread_id)


def test_old_delivery_counters_expire_and_metrics_stay(tmp_path):
    from lgdist.distributed.runs import RunStore, deliveries_table

    store = RunStore(f"sqlite:///{tmp_path / 'runs.db'}")
    store.count_delivery("old.task")
    store.count_delivery("fresh.task")
    store.count_delivery("metrics:sweeper:reschedules")
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(deliveries_table)
            .where(deliveries_table.c.key != "fresh.task")
            .values(updated_at=time.time() - 8 * 24 * 3600)
        )
    assert store.expire_deliveries() == 1
    with store.engine.connect() as conn:
        keys = sorted(conn.execute(sa.select(deliveries_table.c.key)).scalars())
    assert keys == ["fresh.task", "metrics:sweeper:reschedules"]
