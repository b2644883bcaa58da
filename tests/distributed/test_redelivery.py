"""At-least-once delivery, exactly-once state: duplicated node and
callback messages, a pool process killed in the middle of a node, a node
that kills every process running it, and a step lost with its whole worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lgdist.distributed.messages import FinishStepMessage, RunNodeMessage

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(90)]

STEPS = 5  # LGDIST_EXAMPLE_STEPS in the cluster's environment
SLOW_AT = 2  # LGDIST_EXAMPLE_SLOW_AT: the step that sees n == 2 sleeps


def _start_slow_run(cluster: Any, prefix: str, durability: str = "async") -> tuple[str, str]:
    assert (cluster.env["LGDIST_EXAMPLE_STEPS"], cluster.env["LGDIST_EXAMPLE_SLOW_AT"]) == (str(STEPS), str(SLOW_AT))
    cluster.pid_file.unlink(missing_ok=True)
    thread_id = cluster.thread_id(prefix)
    run_id = cluster.client.submit("slow", {"n": 0}, thread_id, durability=durability)
    return thread_id, run_id


def _wait_for_slow_node(cluster: Any) -> int:
    """The pid of the process now sleeping in the slow step."""
    text = cluster.wait_for(
        lambda: cluster.pid_file.exists() and cluster.pid_file.read_text().strip(),
        timeout=30,
        what="the slow node to start",
    )
    return int(text)


def _snapshot_key(snap: Any) -> tuple:
    return (
        snap.config["configurable"]["checkpoint_id"],
        (snap.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
        snap.metadata["step"],
        snap.metadata["source"],
        snap.values,
        snap.next,
    )


def _step_messages(cluster: Any, run_id: str, thread_id: str, snap: Any) -> list[tuple[str, str, dict]]:
    """The (task name, celery task id, kwargs) the coordinator sent for the
    step that starts at checkpoint ``snap``: one run_node per task, then the
    chord's finish_step — or, for a step with one task, one run_node that
    finishes the step itself. Ids come from the checkpoint store."""
    checkpoint_id = snap.config["configurable"]["checkpoint_id"]
    single = len(snap.tasks) == 1
    out = []
    for task in snap.tasks:
        kwargs = RunNodeMessage(
            run_id=run_id, thread_id=thread_id, graph="slow",
            checkpoint_id=checkpoint_id, task_id=task.id, node=task.name, finish=single,
        ).model_dump()  # fmt: skip
        out.append(("lgdist.run_node", f"{checkpoint_id}.{task.id}", kwargs))
    if single:
        return out
    finish = FinishStepMessage(run_id=run_id, thread_id=thread_id, graph="slow", checkpoint_id=checkpoint_id)
    out.append(("lgdist.finish_step", f"{checkpoint_id}.finish", finish.model_dump()))
    return out


def _send_again(app: Any, messages: list[tuple[str, str, dict]]) -> list[dict]:
    """Publish each message again under its original task id and wait for
    what the duplicate did (the first delivery's stored result is dropped
    first, so ``get`` waits for the duplicate's)."""
    results = []
    for name, task_id, kwargs in messages:
        app.AsyncResult(task_id).forget()
        results.append(app.send_task(name, kwargs=kwargs, task_id=task_id).get(timeout=30))
    return results


def _steps_before_slow_node(cluster: Any, thread_id: str) -> list:
    """The stored checkpoints of the steps that finished before the slow
    node, once all of them are stored (else an empty list)."""
    finished = [s for s in cluster.history("slow", thread_id) if s.tasks][:-1]
    return finished if [s.metadata["step"] for s in finished] == list(range(-1, SLOW_AT)) else []


@pytest.mark.parametrize("durability", ["sync", "async"])
def test_duplicated_run_node_and_finish_step_change_nothing(cluster, client, celery_app, durability):
    thread_id, run_id = _start_slow_run(cluster, f"dup-{durability}", durability)
    _wait_for_slow_node(cluster)

    # While the run is busy in a later step, repeat the earlier steps' messages.
    # Under "sync" those steps were stored before the slow node began; under
    # "async" the worker kept them with the slice and its background store
    # writes them once the node has run LGDIST_INLINE_MS.
    finished = cluster.wait_for(
        lambda: _steps_before_slow_node(cluster, thread_id), timeout=30, what="the steps before the slow node to be stored"
    )
    before = [_snapshot_key(s) for s in cluster.history("slow", thread_id)]
    for snap in finished:
        messages = _step_messages(cluster, run_id, thread_id, snap)
        results = _send_again(celery_app, messages)
        nodes = [r for (name, _, _), r in zip(messages, results) if name == "lgdist.run_node"]
        assert [r["status"] for r in nodes] == ["done-before"] * len(nodes), results
        assert all(r["status"] == "ok" for r in results[len(nodes):]), results
    assert [_snapshot_key(s) for s in cluster.history("slow", thread_id)][: len(before)] == before

    assert cluster.wait_run(run_id)["status"] == "success"
    history = cluster.history("slow", thread_id)
    cluster.assert_linear_history(history)
    cluster.assert_thread_sound(thread_id)
    assert len(history) == STEPS + 2  # input, __start__, then one per step
    assert [_snapshot_key(s) for s in history][: len(before)] == before
    assert history[-1].values == {"n": STEPS, "trail": list(range(STEPS))}
    values = [c for m, c in client.events(run_id, timeout=5) if m == "values"]
    assert [v["n"] for v in values] == list(range(STEPS + 1)), "a duplicate published stream events"

    # After the run finished: every step's messages once more.
    final = [_snapshot_key(s) for s in history]
    for snap in history:
        if snap.tasks:
            _send_again(celery_app, _step_messages(cluster, run_id, thread_id, snap))
    assert [_snapshot_key(s) for s in cluster.history("slow", thread_id)] == final
    assert client.get_run(run_id)["status"] == "success"
    assert cluster.thread_status(thread_id) == "idle"


def _parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_worker_process_killed_mid_node_is_redelivered_and_the_thread_finishes(cluster, client):
    thread_id, run_id = _start_slow_run(cluster, "sigkill")
    victim = _wait_for_slow_node(cluster)
    assert _parent_pid(victim) in cluster.worker_pids(), "the node should run in a prefork pool child"
    os.kill(victim, signal.SIGKILL)

    assert cluster.wait_run(run_id, timeout=60)["status"] == "success"
    rerun_by = int(cluster.pid_file.read_text())
    assert rerun_by != victim, "the slow node never ran again after its process was killed"

    history = cluster.history("slow", thread_id)
    cluster.assert_linear_history(history)
    cluster.assert_thread_sound(thread_id)
    assert len(history) == STEPS + 2
    assert history[-1].values == {"n": STEPS, "trail": list(range(STEPS))}
    assert client.get_run(run_id)["error"] is None

    # The killed task's message was delivered twice (task_reject_on_worker_lost).
    # The slow step runs in the message of an earlier one-task step (inline)
    # or in lgdist.start itself (a run's first one-task steps run there):
    # a run_node message counted (per message id, in the broker's Redis;
    # only deliveries after the first are: Redis marks them), or
    # lgdist.start redelivered and continuing the run.
    ids = {s.config["configurable"]["checkpoint_id"] for s in history}
    counts = {
        key.decode(): int(client.backend.deliveries.redis.get(key))
        for key in client.backend.deliveries.redis.scan_iter("lgdist:deliveries:*")
        if key.decode().split(":")[-1].split(".")[0] in ids
    }
    logs = "".join(w.log_since() for w in cluster.workers)
    assert 1 in counts.values() or f"'status': 'continued', 'run_id': '{run_id}'" in logs, counts
    assert "WorkerLostError" in logs or "SIGKILL" in logs


@pytest.mark.timeout(180)
@pytest.mark.parametrize("durability", ["sync", "async"])
def test_a_node_that_kills_every_worker_running_it_is_parked_as_a_poison_task(cluster, client, durability):
    """The run's first steps, the poison node's included, run inline in
    ``lgdist.start``. Under "async" the first delivery dies with its slice
    in memory: nothing stored. The redelivered start stores each step as
    it goes, so the next one goes on past them and sends the node a
    message of its own, whose deliveries are counted."""
    thread_id = cluster.thread_id(f"poison-{durability}")
    run = cluster.wait_run(client.submit("poison", {"n": 0}, thread_id, durability=durability), timeout=120)

    assert run["status"] == "error"
    max_deliveries = client.settings.max_deliveries
    assert f"node 'crash' was delivered {max_deliveries + 1} times without finishing" in run["error"]
    assert "poison" in run["error"]
    assert cluster.thread_status(thread_id) == "error"
    state = client.get_state("poison", thread_id)
    assert state.next == ("crash",) and state.values == {"n": 0, "trail": []}
    cluster.assert_thread_sound(thread_id)
    # The workers survived: each lost a pool child per delivery and replaced it.
    assert all(w.proc.poll() is None for w in cluster.workers)
    assert cluster.app.control.ping(destination=[w.nodename for w in cluster.workers], timeout=2.0)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("durability", ["sync", "async"])
def test_a_poison_node_run_inline_after_another_in_a_node_task_is_parked(cluster, client, durability):
    """``count``'s task runs ``crash`` inline after it. Under "async" its
    first delivery dies with both steps in memory; the redelivered task
    stores its own step at once, so the next delivery finds it stored,
    goes on past it and sends ``crash`` a message of its own, whose
    deliveries are counted."""
    thread_id = cluster.thread_id(f"poison-later-{durability}")
    run = cluster.wait_run(client.submit("poison-later", {"n": 0}, thread_id, durability=durability), timeout=120)

    assert run["status"] == "error"
    assert f"node 'crash' was delivered {client.settings.max_deliveries + 1} times without finishing" in run["error"]
    state = client.get_state("poison-later", thread_id)
    assert state.next == ("crash",) and state.values == {"n": 2, "trail": []}
    cluster.assert_thread_sound(thread_id)


def test_a_step_lost_with_its_whole_worker_is_rescheduled_by_the_sweeper(cluster, client):
    """SIGKILL a worker's main process and pool child together: the node's
    message stays unacknowledged in Redis (redelivered only after the 1 h
    visibility timeout), so the step stalls until ``lgdist sweep``
    reschedules it; only its unfinished task runs again."""
    thread_id, run_id = _start_slow_run(cluster, "lost")
    victim = _wait_for_slow_node(cluster)
    (owner,) = [w for w in cluster.workers if w.proc.pid == _parent_pid(victim)]
    os.killpg(owner.proc.pid, signal.SIGKILL)
    owner.proc.wait(timeout=10)
    stalled_at = len(cluster.history("slow", thread_id))
    # Another run goes through the surviving worker from start to end: it
    # was free to take the lost step's work, had any reached the queue.
    other = client.submit("counter", {"n": 3}, cluster.thread_id("alongside"))
    assert cluster.wait_run(other, timeout=60)["status"] == "success"
    assert client.get_run(run_id)["status"] == "running"
    assert len(cluster.history("slow", thread_id)) == stalled_at, "the step moved on without its worker"

    sweep = subprocess.run(
        [str(Path(sys.executable).with_name("lgdist")), "sweep", "--older-than", "0.5"],
        env=cluster.process_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr
    assert thread_id in sweep.stdout
    cluster.replace_worker(owner)

    assert cluster.wait_run(run_id, timeout=60)["status"] == "success"
    history = cluster.history("slow", thread_id)
    cluster.assert_linear_history(history)
    cluster.assert_thread_sound(thread_id)
    assert history[-1].values == {"n": STEPS, "trail": list(range(STEPS))}
