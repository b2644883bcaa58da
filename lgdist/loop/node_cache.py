"""Node caching in the step loop: a task of a node with a ``cache_policy``
whose input was seen before (within the policy's ttl) takes its writes from
the graph's cache instead of running; a task that finished stores its
writes there. Interrupted or failed tasks are never cached."""

from __future__ import annotations

from typing import Any, Optional

from lgdist.cache.keys import policy_ttl, task_cache_key
from lgdist.constants import ERROR, INTERRUPT
from lgdist.engine.tasks import Task


def _key(task: Task) -> Optional[tuple]:
    policy = getattr(task.node, "cache_policy", None)
    if policy is None:
        return None
    return task_cache_key(task.name, task.node.bound, policy, task.input)


def take_cached(cache: Any, tasks: list[Task]) -> tuple[list[Task], list[Task]]:
    """Split ``tasks`` into those to run and those whose writes the cache
    holds (their ``writes`` filled in)."""
    if cache is None:
        return tasks, []
    keyed = {key: task for task in tasks if (key := _key(task)) is not None}
    if not keyed:
        return tasks, []
    found = cache.get(list(keyed))
    hits = [keyed[key] for key in keyed if key in found]
    for key, task in keyed.items():
        if key in found:
            task.writes = [tuple(w) for w in found[key]]
    hit_ids = {t.id for t in hits}
    return [t for t in tasks if t.id not in hit_ids], hits


def remember(cache: Any, task: Task) -> None:
    """Store a finished task's writes, if its node is cached."""
    if cache is None or any(c in (INTERRUPT, ERROR) for c, _ in task.writes):
        return
    key = _key(task)
    if key is not None:
        cache.set({key: (list(task.writes), policy_ttl(task.node.cache_policy))})
