"""The thread invariant checker (``lgdist check THREAD``).

What must hold for a thread whatever failed along the way: its history is
one parent chain per branch with contiguous steps; no step was stored twice
(two ``loop`` children of one checkpoint, unless a run asked for a fork
there); every task of a step that moved on has exactly one saved outcome;
no pending writes point at a checkpoint that does not exist; the thread's
status agrees with its latest checkpoint (pending work or an unanswered
interrupt is never left ``idle``, an interrupt never ``error``, a node's
error run has a failed task - not one a later copy completed); and every
run ended in a state a user can act on - a busy thread is held by a live
run, no run is left "running" without holding its thread or with no
progress and nothing queued, and an error run says what went wrong.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any, Optional

import sqlalchemy as sa

from lgdist.checkpoint.sql import checkpoints_table, writes_table
from lgdist.engine import channels_from_checkpoint, plan_next_step
from lgdist.distributed.coordinator import forked_from
from lgdist.distributed.queues import read_backlog
from lgdist.engine.outcomes import PENDING, Outcome, completed_tasks, task_outcomes


def check_thread(backend: Any, thread_id: str) -> list[str]:
    """Problems found in the thread's stored history (empty when sound)."""
    problems: list[str] = []
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    tuples = list(backend.saver.list(config))
    if not tuples:
        runs = backend.runs.list_runs(thread_id, limit=10_000)
        if runs and all(r.status in ("error", "cancelled") and r.start_step is None for r in runs):
            # Only runs that failed before loading anything (an unregistered
            # graph, bad input): no history is the right history.
            return _run_problems(backend, thread_id, backend.runs.get_thread(thread_id))
        return [f"thread {thread_id!r} has no checkpoints"]
    by_id = {t.config["configurable"]["checkpoint_id"]: t for t in tuples}
    children: dict[str, list] = defaultdict(list)
    for t in tuples:
        parent = t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None
        if parent is None:
            if t.metadata.get("step") != -1 and t.metadata.get("source") != "update":
                problems.append(f"root checkpoint {t.config['configurable']['checkpoint_id']} has step {t.metadata.get('step')}")
            continue
        if parent not in by_id:
            problems.append(f"checkpoint {t.config['configurable']['checkpoint_id']} has missing parent {parent}")
            continue
        children[parent].append(t)
        step, parent_step = t.metadata.get("step"), by_id[parent].metadata.get("step")
        if step != parent_step + 1:
            problems.append(f"step gap: checkpoint at step {step} follows step {parent_step}")

    thread = backend.runs.get_thread(thread_id)
    spec = backend.registry.get(thread["graph"]).get_graph_spec() if thread else None
    runs = backend.runs.list_runs(thread_id, limit=10_000)
    forks = Counter(forked_from(r) for r in runs if r.start_step is not None)
    for parent_id, kids in children.items():
        loops = [k for k in kids if k.metadata.get("source") == "loop"]
        if len(loops) > 1 + forks.get(parent_id, 0):
            problems.append(
                f"step after {parent_id} was stored {len(loops)} times "
                f"(sibling checkpoints; {forks.get(parent_id, 0)} fork(s) asked for there)"
            )
        if loops and spec is not None:
            parent = by_id[parent_id]
            channels = channels_from_checkpoint(spec.channels, parent.checkpoint)
            tasks = plan_next_step(spec, parent.checkpoint, channels, parent.metadata["step"] + 1, read_inputs=False)
            done = completed_tasks(parent.pending_writes or [])
            # A one-task step stores its checkpoint without a pending write
            # (the task finished the step itself): only wide steps leave writes.
            for task in tasks.values() if len(tasks) > 1 else ():
                if task.id not in done:
                    problems.append(f"task {task.name} ({task.id}) of step {parent.metadata['step'] + 1} has no saved writes")

    with backend.saver.engine.connect() as conn:
        ids = set(conn.execute(
            sa.select(checkpoints_table.c.checkpoint_id).where(checkpoints_table.c.thread_id == thread_id)
        ).scalars())
        write_ids = set(conn.execute(
            sa.select(writes_table.c.checkpoint_id).where(writes_table.c.thread_id == thread_id).distinct()
        ).scalars())
    for orphan in sorted(write_ids - ids):
        problems.append(f"pending writes for missing checkpoint {orphan}")

    problems.extend(_run_problems(backend, thread_id, thread))

    if thread is not None and spec is not None and thread["status"] != "busy":
        problems.extend(_resting_problems(spec, thread, tuples[0], runs))
    return problems


def _resting_problems(spec: Any, thread: dict, latest: Any, runs: list) -> list[str]:
    """A thread no run holds must rest in a status its latest checkpoint
    agrees with: pending work is resumable (``interrupted``), an unanswered
    interrupt is never ``idle`` or ``error``, and a run that ended in a
    node's error has that task failed (not completed by a later copy)."""
    problems: list[str] = []
    channels = channels_from_checkpoint(spec.channels, latest.checkpoint)
    nxt = plan_next_step(spec, latest.checkpoint, channels, latest.metadata["step"] + 1, read_inputs=False)
    outcomes = task_outcomes(latest.pending_writes or [])
    waiting = [t.name for t in nxt.values() if outcomes.get(t.id, PENDING).kind is Outcome.INTERRUPTED]
    status = thread["status"]
    if status in ("idle", "error") and waiting:
        problems.append(f"thread is {status} but its latest checkpoint has unanswered interrupts in {waiting}")
    elif status == "idle" and nxt:
        problems.append(f"thread is idle but its latest checkpoint still has tasks {[t.name for t in nxt.values()]}")
    if status == "interrupted" and not nxt:
        problems.append("thread is interrupted but its latest checkpoint has no pending tasks")
    last = runs[0] if runs else None
    if status == "error" and last is not None and last.status == "error" and (last.error or "").startswith("node "):
        failed = [t.name for t in nxt.values() if outcomes.get(t.id, PENDING).kind is Outcome.FAILED]
        if not failed:
            problems.append(
                f"run {last.run_id} ended in a node's error, but no task of the thread's current step "
                "failed (the failed task has completed writes, or the step had moved on)"
            )
    return problems


def _stuck(backend: Any, thread: Optional[dict], run: Any) -> bool:
    """No progress for a stall period and no message waiting: nothing will
    move the run unless the sweeper repairs it."""
    if thread is None or time.time() - thread["updated_at"] < backend.settings.stall_seconds:
        return False
    try:
        backlog = read_backlog(backend.app, backend.settings.queue_names(), fresh_seconds=backend.settings.stall_seconds)
        return not backlog.holds(run.run_id)
    except Exception:  # noqa: BLE001 - no broker to ask: say nothing
        return False


def _run_problems(backend: Any, thread_id: str, thread: Optional[dict]) -> list[str]:
    problems: list[str] = []
    runs = backend.runs.list_runs(thread_id, limit=10_000)
    by_id = {r.run_id: r for r in runs}
    active = thread["active_run_id"] if thread else None
    if thread is not None and thread["status"] == "busy":
        run = by_id.get(active or "")
        if run is None:
            problems.append(f"thread is busy with run {active}, which does not exist")
        elif run.status not in ("pending", "running"):
            problems.append(f"thread is busy with run {active}, which has ended ({run.status})")
    for run in runs:
        if run.status == "running" and run.run_id != active:
            problems.append(f"run {run.run_id} is running but does not hold the thread")
        if run.status == "running" and run.run_id == active and _stuck(backend, thread, run):
            problems.append(
                f"run {run.run_id} is running with no progress for over {backend.settings.stall_seconds:g}s "
                "and nothing of it waits in a queue"
            )
        if run.status == "error" and not run.error:
            problems.append(f"run {run.run_id} ended in error without saying why")
    return problems
