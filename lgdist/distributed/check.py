"""The thread invariant checker (``lgdist check THREAD``).

What must hold for a thread whatever failed along the way: its history is
one parent chain per branch with contiguous steps; no step was stored twice
(two ``loop`` children of one checkpoint); every task of a step that moved on
has exactly one saved outcome; the run status agrees with the last
checkpoint; no pending writes point at a checkpoint that does not exist.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from lgdist.checkpoint.sql import checkpoints_table, writes_table
from lgdist.constants import ERROR, INTERRUPT, RESUME
from lgdist.engine import channels_from_checkpoint, plan_next_step


def check_thread(backend: Any, thread_id: str) -> list[str]:
    """Problems found in the thread's stored history (empty when sound)."""
    problems: list[str] = []
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    tuples = list(backend.saver.list(config))
    if not tuples:
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
    for parent_id, kids in children.items():
        loops = [k for k in kids if k.metadata.get("source") == "loop"]
        if len(loops) > 1:
            problems.append(f"step after {parent_id} was stored {len(loops)} times")
        if loops and spec is not None:
            parent = by_id[parent_id]
            channels = channels_from_checkpoint(spec.channels, parent.checkpoint)
            tasks = plan_next_step(spec, parent.checkpoint, channels, parent.metadata["step"] + 1, read_inputs=False)
            done = {tid for tid, chan, _ in parent.pending_writes or [] if chan not in (ERROR, INTERRUPT, RESUME)}
            for task in tasks.values():
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

    if thread is not None and spec is not None and thread["status"] != "busy":
        latest = tuples[0]
        channels = channels_from_checkpoint(spec.channels, latest.checkpoint)
        nxt = plan_next_step(spec, latest.checkpoint, channels, latest.metadata["step"] + 1, read_inputs=False)
        if thread["status"] == "idle" and nxt:
            problems.append(f"thread is idle but its latest checkpoint still has tasks {[t.name for t in nxt.values()]}")
        if thread["status"] == "interrupted" and not nxt:
            problems.append("thread is interrupted but its latest checkpoint has no pending tasks")
    return problems
