"""Apply a finished step's writes to the channels, in a deterministic order."""

from __future__ import annotations

from typing import Any, Callable, Container, Iterable, Mapping, MutableMapping, Optional

from lgdist.constants import PUSH
from lgdist.engine.channels import BaseChannel
from lgdist.engine.outcomes import SPECIAL_WRITES
from lgdist.engine.tasks import Task

NextVersion = Callable[[Optional[str]], str]


def task_order(task: Task) -> tuple:
    # Pull tasks sort by node name, push tasks by send order; pushes after
    # pulls. This is the order in which writes to a reducer are folded in.
    if len(task.path) < 2:
        return (2, 0, task.name)  # input / null-task writes come last
    kind, key = task.path[0], task.path[1]
    return (1, key, "") if kind == PUSH else (0, 0, key)


def apply_writes(
    checkpoint: MutableMapping[str, Any],
    channels: Mapping[str, BaseChannel],
    tasks: Iterable[Task],
    next_version: NextVersion,
    trigger_to_nodes: Optional[Container[str]] = None,
    *,
    may_hold: Optional[Iterable[str]] = None,
    changed: Optional[set[str]] = None,
) -> set[str]:
    """Fold every task's writes into ``channels`` and bump the versions of the
    channels that changed. Mutates ``checkpoint``'s version bookkeeping.

    With ``trigger_to_nodes`` (the channels that trigger some node), a step
    after which no channel that triggers a node is available is tentatively
    the last one: every channel is told the run is finishing, which makes
    the triggers of ``defer=True`` nodes available.

    ``may_hold`` names the channels that may hold a value a step clears
    (ephemeral triggers, Send packets), in ``channels``' order: every
    channel updated since the last step, for a caller that knows it; then
    clearing them costs O(channels touched), not O(channels). ``None``
    checks every channel. ``changed``,
    when given, receives every channel whose version was bumped.

    Returns the names of the channels updated in this step.
    """
    ordered = sorted(tasks, key=task_order)
    versions = checkpoint["channel_versions"]
    seen_all = checkpoint["versions_seen"]

    # Record what each task saw, so it is not triggered again by the same write.
    for task in ordered:
        if task.triggers == (PUSH,):
            continue
        # Copy-on-write: a node's inner dict may be shared with the previous
        # checkpoint (create_checkpoint copies only the outer dict).
        seen = dict(seen_all.get(task.name, ()))
        for chan in task.triggers:
            if chan in versions:
                seen[chan] = versions[chan]
        seen_all[task.name] = seen

    max_version = max(versions.values(), default=None)

    def bump(chan: str) -> None:
        nonlocal max_version
        max_version = next_version(max_version)
        versions[chan] = max_version
        if changed is not None:
            changed.add(chan)

    for task in ordered:
        for chan in task.triggers:
            if chan in channels and channels[chan].consume():
                bump(chan)

    grouped: dict[str, list[Any]] = {}
    for task in ordered:
        for chan, value in task.writes:
            if chan in SPECIAL_WRITES:
                continue
            if chan not in channels:
                continue  # writes to unknown keys were validated by the node writer
            grouped.setdefault(chan, []).append(value)

    updated: set[str] = set()
    for chan, values in grouped.items():
        if channels[chan].update(values):
            bump(chan)
            updated.add(chan)

    # Ephemeral channels (edge triggers, input, Send packets) clear one step
    # after they were written. Only a real step (some task was triggered)
    # moves time on: writes without triggers (graph input, a resume
    # Command's update/goto) land on top of the current step, which must
    # keep its pending triggers (e.g. the node a breakpoint stopped before).
    if any(task.triggers for task in ordered):
        for chan in list(channels if may_hold is None else may_hold):
            if chan in updated or chan not in versions or chan not in channels:
                continue
            if channels[chan].update([]):
                bump(chan)
                updated.add(chan)
        if trigger_to_nodes is not None and not any(
            chan in trigger_to_nodes and channels[chan].is_available() for chan in updated
        ):
            for chan, channel in channels.items():
                if channel.finish():
                    bump(chan)
                    updated.add(chan)
    return updated

