"""The services restart under a running thread: Redis (broker, chord
counters, results and streams are all lost: it keeps no data) and Postgres
(every connection is cut and refused for a while).

These run on a Redis server and a Postgres cluster of their own (see
``restart_cluster`` in conftest.py) so that restarting them cannot disturb
another test session sharing the machine's services."""

from __future__ import annotations

import threading
import time

import pytest
from faultlib import record

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(150)]

TICKS = {"until": 25}  # 0.1 s per tick in the restart cluster


def _stream_in_background(cluster, run_id: str) -> tuple[threading.Thread, list, list]:
    chunks: list = []
    errors: list = []

    def read() -> None:
        try:
            chunks.extend(cluster.client.stream_run(run_id, timeout=120))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader, chunks, errors


def _progress_after(cluster, thread_id: str, fault_at: float, timeout: float) -> float:
    """Seconds from the fault until the thread stores a checkpoint it did
    not have when the service came back."""
    count = cluster.checkpoint_count(thread_id)
    cluster.wait_for(lambda: cluster.checkpoint_count(thread_id) > count, timeout=timeout, what="progress after the restart")
    return time.monotonic() - fault_at


@pytest.mark.fault("redis-restart")
def test_redis_restarted_mid_run_the_sweeper_reschedules_the_lost_step(restart_cluster):
    rc = restart_cluster
    cluster = rc.cluster
    thread_id = cluster.thread_id("redis")
    run_id = cluster.client.submit("ticker", TICKS, thread_id)
    reader, chunks, errors = _stream_in_background(cluster, run_id)
    cluster.wait_checkpoints(thread_id, 6)

    down = time.monotonic()
    rc.redis.restart(down_seconds=1.0)
    recovered = _progress_after(cluster, thread_id, down, timeout=6 * cluster.stall_seconds)

    assert cluster.wait_run(run_id, timeout=60)["status"] == "success"
    lost, duplicated = cluster.assert_fault_free("ticker", thread_id, [TICKS])
    # The reader survived the restart and ended (from the new stream or the run record).
    reader.join(timeout=15)
    assert not reader.is_alive(), "the stream reader hangs after the Redis restart"
    assert not errors, errors
    assert chunks and chunks[-1] == cluster.client.get_state("ticker", thread_id).values
    # The cluster works normally afterwards.
    again = cluster.thread_id("redis-after")
    assert cluster.wait_run(cluster.client.submit("ticker", {"until": 2}, again), timeout=30)["status"] == "success"
    lost2, duplicated2 = cluster.assert_fault_free("ticker", again, [{"until": 2}])
    record("redis-restart", runs=2, lost=lost + lost2, duplicated=duplicated + duplicated2, recover=recovered,
           by="sweeper (lost messages); stream readers fall back to the run record")  # fmt: skip


@pytest.mark.fault("postgres-restart")
def test_postgres_restarted_mid_run_tasks_retry_until_it_is_back(restart_cluster):
    rc = restart_cluster
    cluster = rc.cluster
    thread_id = cluster.thread_id("postgres")
    run_id = cluster.client.submit("ticker", TICKS, thread_id)
    reader, chunks, errors = _stream_in_background(cluster, run_id)
    cluster.wait_checkpoints(thread_id, 6)

    down = time.monotonic()
    rc.postgres.restart(down_seconds=2.0)
    recovered = _progress_after(cluster, thread_id, down, timeout=6 * cluster.stall_seconds)

    assert cluster.wait_run(run_id, timeout=60)["status"] == "success"
    lost, duplicated = cluster.assert_fault_free("ticker", thread_id, [TICKS])
    reader.join(timeout=15)
    assert not reader.is_alive() and not errors, errors
    assert chunks and chunks[-1] == cluster.client.get_state("ticker", thread_id).values
    logs = "".join(w.log_since() for w in cluster.workers)
    assert "OperationalError" in logs and "Retry in" in logs, "no task met the outage (the restart missed the run)"
    record("postgres-restart", runs=1, lost=lost, duplicated=duplicated, recover=recovered,
           by="task autoretry on OperationalError; pool pre-ping")  # fmt: skip


@pytest.mark.fault("submit-broker-down")
def test_a_submit_that_fails_with_the_broker_down_leaves_no_run_to_start_later(restart_cluster):
    """The client is told the submission failed: the run must not stay
    pending on a busy thread for the sweeper to start later, and a retry
    must not find the thread busy."""
    rc = restart_cluster
    cluster = rc.cluster
    thread_id = cluster.thread_id("submit-down")
    rc.redis.stop()
    try:
        started = time.monotonic()
        with pytest.raises(Exception) as raised:
            cluster.client.submit("ticker", {"until": 3}, thread_id)
        failed_after = time.monotonic() - started
    finally:
        rc.redis.start()
    (failed,) = cluster.client.runs(thread_id)
    assert failed["status"] == "error", (failed, raised.value)
    assert "could not be submitted" in failed["error"]
    assert cluster.thread_status(thread_id) != "busy"

    retry = cluster.client.submit("ticker", {"until": 3}, thread_id)
    assert cluster.wait_run(retry, timeout=60)["status"] == "success"
    assert cluster.client.get_run(failed["run_id"])["status"] == "error"
    history = cluster.history("ticker", thread_id)
    assert [s.metadata["source"] for s in history].count("input") == 1
    cluster.assert_thread_sound(thread_id)
    record("submit-broker-down", runs=1, recover=failed_after, by="the submit fails and ends its run")
