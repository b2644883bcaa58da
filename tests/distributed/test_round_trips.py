"""The hot path's round-trip budget, counted (not timed): see the budget in
``lgdist/distributed/nodes.py``. The Celery driver runs in-process
(``bench/round_trips.py``): each step message the coordinator would send is
handed to ``nodes.run_node``, the function a worker's task calls."""

from __future__ import annotations

import uuid
from typing import Any, Iterator

import pytest

from bench.round_trips import Counter, count_run, drive, in_process_backend
from tests.conftest import POSTGRES_URL, REDIS_URL

pytestmark = [pytest.mark.integration]


@pytest.fixture
def backend() -> Iterator[Any]:
    with in_process_backend(POSTGRES_URL, REDIS_URL) as backend:
        yield backend


def test_a_chain_superstep_costs_two_transactions_and_at_most_six_statements(backend):
    run_id, counters = drive(backend, "chain", {"n": 0})
    assert backend.runs.get_run(run_id).status == "success"
    steps = counters[3:-1]  # warm steps (the last one also ends the run)
    assert len(steps) >= 10
    for counter in steps:
        assert counter.transactions <= 2, counter.statements
        assert len(counter.statements) <= 6, counter.statements
        assert counter.checkouts <= 2
    # The read: one statement for the run and the checkpoint row (and, as
    # a CTE, the thread's lease); no blob
    # read (small values live in the row; others this process decoded
    # already); no writes read. The write: lease + run check, checkpoint,
    # the task's writes (no blob: the chain's state is one small number).
    assert steps[0].statements == ["WITH", "UPDATE", "INSERT", "INSERT"], steps[0].statements
    # The read finds the lease fresh (the previous step's store touched
    # it) and writes nothing: one commit per step waits for a WAL flush.
    assert all(counter.durable == 1 for counter in steps), [c.durable for c in steps]


def test_a_worker_new_to_the_thread_needs_no_blob_row_for_small_values(backend):
    run_id, counters = drive(backend, "chain", {"n": 0}, cold=True)
    assert backend.runs.get_run(run_id).status == "success"
    for counter in counters[3:-1]:
        assert counter.statements == ["WITH", "UPDATE", "INSERT", "INSERT"], counter.statements
        assert counter.transactions <= 2


def _wide_step(counters: list) -> tuple[list, Any]:
    tasks = [c for c in counters if c.kind == "task"]
    (finish,) = [c for c in counters if c.kind == "finish"]
    return tasks, finish


def test_a_wide_step_reads_once_per_process_and_writes_once_per_step(backend, monkeypatch):
    from lgdist.distributed import coordinator

    # A process that did not send the step (the other workers).
    monkeypatch.setattr(coordinator, "remember_sent_step", lambda *args, **kwargs: None)
    run_id, counters = drive(backend, "fanout", {"hits": []})
    assert backend.runs.get_run(run_id).status == "success"
    tasks, finish = _wide_step(counters)
    assert len(tasks) == 32
    # The first task this process runs reads the run and the checkpoint
    # row (one statement, touching the lease); the step's other tasks here
    # read nothing, and no task writes to Postgres: their writes go to the
    # callback through Redis.
    assert tasks[0].statements == ["WITH"], tasks[0].statements
    assert all(t.statements == [] and t.transactions == 0 for t in tasks[1:]), [t.statements for t in tasks]
    # The lease was touched as the step was stored: the read writes nothing.
    assert all(t.durable == 0 for t in tasks), [t.durable for t in tasks]
    # The callback: the run with the checkpoint row, its pending writes;
    # then one transaction: lease + run check, checkpoint, blob, and the
    # 32 tasks' writes (one executemany).
    assert finish.statements == ["WITH", "SELECT", "UPDATE", "INSERT", "INSERT", "INSERT"], finish.statements
    assert finish.transactions == 2
    assert finish.durable == 1  # the store; the read wrote nothing


def test_the_process_that_sent_a_wide_step_runs_its_tasks_without_reading_it(backend):
    run_id, counters = drive(backend, "fanout", {"hits": []})
    assert backend.runs.get_run(run_id).status == "success"
    tasks, _ = _wide_step(counters)
    assert len(tasks) == 32
    # The sender kept the step it stored, restored and planned: no task
    # of it here reads the run or the checkpoint.
    assert all(t.statements == [] and t.transactions == 0 for t in tasks), [t.statements for t in tasks]
    # What it kept is what a read and restore of the stored step give.
    from lgdist.distributed.coordinator import apply_stop, make_loop
    from lgdist.distributed.step_reads import recent_loop

    run = backend.runs.get_run(run_id)
    history = backend.saver.list({"configurable": {"thread_id": run.thread_id}})
    (checkpoint_id,) = [t.checkpoint["id"] for t in history if recent_loop(run_id, t.checkpoint["id"]) is not None]
    kept = recent_loop(run_id, checkpoint_id)
    restored = make_loop(backend, run, checkpoint_id=checkpoint_id)
    restored.restore()
    apply_stop(run, restored)
    restored.plan_task(next(iter(kept.tasks)))
    assert (kept.step, kept.stop, kept.checkpoint["id"]) == (restored.step, restored.stop, checkpoint_id)
    assert kept.checkpoint_config["configurable"] == restored.checkpoint_config["configurable"]
    assert {n: c.checkpoint() for n, c in kept.channels.items()} == {n: c.checkpoint() for n, c in restored.channels.items()}
    assert sorted(kept.tasks) == sorted(restored.tasks)


def test_a_wide_step_task_keeps_its_writes_and_streams_its_event_in_one_redis_command(backend):
    drive(backend, "fanout", {"hits": []})  # the process's first script load and connections
    run_id, counters = drive(backend, "fanout", {"hits": []})
    assert backend.runs.get_run(run_id).status == "success"
    tasks, _ = _wide_step(counters)
    assert len(tasks) == 32
    # A first delivery counts nothing in Redis (the broker marks
    # redeliveries); one script keeps the writes, appends the task's
    # lgdist:worker event and says whether the step was ended - no MULTI,
    # no separate EXPIRE or EXISTS.
    assert all(t.redis_commands == ["EVALSHA"] for t in tasks), [t.redis_commands for t in tasks]
    assert all(t.redis_round_trips == 1 for t in tasks), [t.redis_round_trips for t in tasks]
    events = [e for e in backend.bus.read(run_id, timeout=5) if e[0] == "lgdist:worker"]
    assert sorted(e[1]["node"] for e in events if e[1]["node"].startswith("w")) == sorted(f"w{i}" for i in range(32))


def test_a_wide_step_task_in_a_process_new_to_the_step_makes_one_read(backend):
    run_id, counters = drive(backend, "fanout", {"hits": []}, cold=True)
    assert backend.runs.get_run(run_id).status == "success"
    tasks, finish = _wide_step(counters)
    for task in tasks:
        # The run and the checkpoint row, and the one channel blob (the
        # list of hits) this process has not decoded.
        assert task.statements == ["WITH", "SELECT"], task.statements
        assert task.transactions == 1
    assert len(finish.statements) <= 7 and finish.transactions == 2, finish.statements


def test_a_wide_step_callback_runs_the_one_task_step_after_it_without_reading_it():
    """With inline steps on (a worker's default), the callback of the
    fan-out's wide step runs the one-task ``join`` step itself: no message
    and no read for it, one more transaction to store it, then the run's
    end. Durable commits: the callback's step, join's step, the run's end."""
    with in_process_backend(POSTGRES_URL, REDIS_URL, inline_steps=8) as backend:
        run_id, counters = drive(backend, "fanout", {"hits": []})
        assert backend.runs.get_run(run_id).status == "success"
    tasks, finish = _wide_step(counters)
    assert len(tasks) == 32
    assert counters[-1] is finish, "no message follows the callback: join ran in it"
    # The callback's read and store, as without inline steps; join's
    # store (lease + run check, checkpoint, blob, its writes); the run's end
    # (the run, its thread and the thread's queued runs in one transaction).
    assert finish.statements == [
        "WITH", "SELECT", "UPDATE", "INSERT", "INSERT", "INSERT",
        "UPDATE", "INSERT", "INSERT", "INSERT",
        "UPDATE", "UPDATE", "SELECT",
    ], finish.statements  # fmt: skip
    assert finish.durable == 3


def test_under_async_durability_a_wide_step_callback_stores_its_slice_and_the_runs_end_at_once():
    """Under durability "async" the callback keeps its step with the
    one-task step it runs after it (``join``) and the run's end: one
    transaction, one durable commit, where "sync" makes three."""
    with in_process_backend(POSTGRES_URL, REDIS_URL, inline_steps=8) as backend:
        drive(backend, "fanout", {"hits": []}, options={"durability": "async"})  # the first load of the graph
        run_id, counters = drive(backend, "fanout", {"hits": []}, options={"durability": "async"})
        assert backend.runs.get_run(run_id).status == "success"
        history = backend.saver.list({"configurable": {"thread_id": backend.runs.get_run(run_id).thread_id}})
        steps = sorted(t.metadata["step"] for t in history)
    tasks, finish = _wide_step(counters)
    assert len(tasks) == 32
    assert counters[-1] is finish, "no message follows the callback: join ran in it"
    # The callback's read (run + checkpoint, its pending writes), then one
    # transaction: lease + run check, the wide step's and join's
    # checkpoints with their blobs and writes, the run's end.
    assert finish.transactions == 2, finish.statements
    assert finish.durable == 1, finish.statements
    assert steps == [-1, 0, 1, 2, 3], steps  # every step stored, as under "sync"


@pytest.fixture
def inline_backend() -> Iterator[Any]:
    with in_process_backend(POSTGRES_URL, REDIS_URL, inline_steps=8) as backend:
        yield backend


def _warm(backend: Any, options: dict) -> None:
    count_run(backend, "five", {"n": 0}, options)  # the graph's first load, the process's first statements


def test_a_five_step_run_inline_stores_a_checkpoint_per_step_under_sync(inline_backend):
    _warm(inline_backend, {"durability": "sync"})
    run_id, counter = count_run(inline_backend, "five", {"n": 0}, {"durability": "sync"})
    assert inline_backend.runs.get_run(run_id).status == "success"
    # begin, read the thread, store the input, note the run's start, a
    # transaction per step (__start__'s and five nodes'), end.
    assert counter.transactions == 11, counter.statements


def test_a_five_step_run_inline_stores_its_slice_in_one_transaction_under_async(inline_backend):
    _warm(inline_backend, {"durability": "async"})
    run_id, counter = count_run(inline_backend, "five", {"n": 0}, {"durability": "async"})
    assert inline_backend.runs.get_run(run_id).status == "success"
    # begin, which also tells the thread has no checkpoint (so nothing is
    # read); the input, the run's start, the six steps and the run's end
    # together (the lease, every checkpoint row with their blobs and writes
    # in one statement, the run and its thread).
    assert counter.transactions == 2, counter.statements
    assert counter.statements.count("SELECT") == 1, counter.statements  # the run's queued successors
    thread_id = inline_backend.runs.get_run(run_id).thread_id
    steps = [t.metadata["step"] for t in inline_backend.saver.list({"configurable": {"thread_id": thread_id}})]
    assert sorted(steps) == [-1, 0, 1, 2, 3, 4, 5]


def test_a_stateless_five_step_run_costs_its_worker_two_transactions(inline_backend):
    options = {"durability": "async", "on_completion": "delete"}
    _warm(inline_backend, options)
    run_id, counter = count_run(inline_backend, "five", {"n": 0}, options)
    # begin (the thread is new: no read); the run's end, which deletes the
    # thread with its run and checkpoints - so the slice's checkpoints,
    # kept until then, are not written at all.
    assert counter.transactions == 2, counter.statements
    assert "INSERT" not in counter.statements
    assert inline_backend.runs.get_run(run_id) is None


def test_a_run_on_a_new_thread_is_submitted_in_one_statement(backend):
    """The usual submit (a new conversation): the thread, created busy with
    the run, and the run in one statement in autocommit. A thread's next
    run claims the thread in one transaction, as before."""
    from lgdist.distributed import lifecycle

    thread_id = f"rt-{uuid.uuid4().hex[:8]}"
    with Counter(backend.runs.engine, "submit") as counter:
        run, claimed = lifecycle.submit(
            backend.runs, thread_id=thread_id, graph="five", kind="start", input={"n": 0}, options={}
        )
    assert claimed and counter.statements == ["WITH"] and counter.durable == 1, counter.statements
    assert backend.runs.get_thread(thread_id)["active_run_id"] == run.run_id
    assert backend.runs.get_run(run.run_id).input == {"n": 0}

    lifecycle.finish(backend.runs, run.run_id, lifecycle.RunStatus.SUCCESS, expect=(lifecycle.RunStatus.PENDING,))
    with Counter(backend.runs.engine, "submit") as counter:
        second, claimed = lifecycle.submit(
            backend.runs, thread_id=thread_id, graph="five", kind="start", input={"n": 1}, options={}
        )
    assert claimed and backend.runs.get_thread(thread_id)["active_run_id"] == second.run_id
    # The statement that found the thread; the run, read back, and the claim.
    assert counter.statements == ["WITH", "INSERT", "SELECT", "UPDATE"], counter.statements
