"""The sweeper repairs stalled runs and nothing else: a step waiting in a
queue behind other work is not stalled, and concurrent sweeps repair one
stalled step once."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from lgdist.distributed import lifecycle
from lgdist.distributed.runs import threads_table
from lgdist.distributed.sweeper import sweep

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(180)]


def test_steps_waiting_in_a_queue_are_not_taken_for_stalled(cluster, client):
    """No fault at all: more fan-out work than the two workers can take at
    once, so steps wait in the queue for several seconds. A sweep that
    calls a thread stalled after two seconds must still find nothing to
    repair - before, it re-sent every queued step. (These workers beat
    every 40 s: a node taken more than ``older_than`` ago and still running
    looks stalled, so ``older_than`` stays well above the 0.3 s node's
    time on a loaded machine.)"""
    older_than = 2.0
    threads = [cluster.thread_id("backlog") for _ in range(8)]
    runs = [client.submit("fanout", {"items": [1, 2, 3, 4]}, t) for t in threads]
    repaired: list[str] = []
    quiet_sweeps = 0  # sweeps that found one of these threads quiet for older_than
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        statuses = [client.get_run(r)["status"] for r in runs]
        if all(s not in ("pending", "running") for s in statuses):
            break
        quiet = {t["thread_id"] for t in client.backend.runs.stalled_threads(older_than)}
        quiet_sweeps += bool(quiet.intersection(threads))
        repaired += sweep(client.backend, older_than=older_than)
        time.sleep(0.2)
    assert quiet_sweeps >= 3, "no step waited in the queue for older_than; the test proves nothing"
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


def test_a_message_a_worker_is_taking_is_not_taken_for_a_lost_one(cluster, client, monkeypatch):
    """A worker takes a message in two steps (kombu's Redis transport pops it
    from its queue, then records it in the ``unacked`` hash): in between, it
    is in neither place. A sweep that reads the backlog in that moment must
    not call the run stalled - before, it sent the run's start again (a
    loaded machine can hold a worker between the two steps)."""
    import base64
    import json

    import redis

    from lgdist.distributed import sweeper

    thread_id = cluster.thread_id("taking")
    run, claimed = lifecycle.submit(
        client.backend.runs, thread_id=thread_id, graph="counter", kind="start", input={"n": 0},
        options={"stream_modes": ["values"]},
    )  # fmt: skip
    assert claimed
    with client.backend.runs.engine.begin() as conn:  # no progress for a minute
        conn.execute(sa.update(threads_table).where(threads_table.c.thread_id == thread_id).values(updated_at=time.time() - 60))
    body = base64.b64encode(json.dumps([[], {"v": 1, "run_id": run.run_id}, {}]).encode()).decode()
    message = {"body": body, "headers": {"task": "lgdist.start"}, "properties": {"body_encoding": "base64"}}
    tag = f"taking-{uuid.uuid4().hex}"
    broker = redis.Redis.from_url(client.app.conf.broker_url)
    reads = []
    real_read = sweeper.read_backlog

    def read_then_record(*args, **kwargs):
        backlog = real_read(*args, **kwargs)
        reads.append(backlog.holds(run.run_id))
        if len(reads) == 1:  # the worker finishes taking the message now
            broker.hset("unacked", tag, json.dumps([message, "", cluster.env["LGDIST_DEFAULT_QUEUE"]]))
            broker.zadd("unacked_index", {tag: time.time()})
        return backlog

    monkeypatch.setattr(sweeper, "read_backlog", read_then_record)
    try:
        touched = sweep(client.backend, older_than=30.0)
    finally:
        broker.hdel("unacked", tag)
        broker.zrem("unacked_index", tag)
    assert reads[0] is False, "the first read saw the message: the test proves nothing"
    assert thread_id not in touched
    assert client.get_run(run.run_id)["status"] == "pending"
    # The message was lost after all (the worker died): the next sweep starts the run.
    monkeypatch.setattr(sweeper, "read_backlog", real_read)
    assert thread_id in sweep(client.backend, older_than=30.0)
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
