"""Static breakpoints: ``interrupt_before`` / ``interrupt_after``."""

from __future__ import annotations

from typing import Any, Iterable, MutableMapping, Sequence, Union

from lgdist.constants import INTERRUPT
from lgdist.engine.tasks import Task


def should_interrupt(
    checkpoint: MutableMapping[str, Any],
    interrupt_nodes: Union[str, Sequence[str]],
    tasks: Iterable[Task],
) -> list[Task]:
    """The tasks that hit a breakpoint. A breakpoint fires only if some channel
    changed since the last interrupt, so resuming does not stop again at the
    same place."""
    if not interrupt_nodes:
        return []
    seen = checkpoint["versions_seen"].get(INTERRUPT, {})
    changed = any(
        version > seen.get(chan, "") for chan, version in checkpoint["channel_versions"].items()
    )
    if not changed:
        return []
    return [
        task
        for task in tasks
        if not task.hidden and (interrupt_nodes == "*" or task.name in interrupt_nodes)
    ]


def mark_resumed(checkpoint: MutableMapping[str, Any]) -> None:
    """Record every current channel version as seen by breakpoints: the thread
    is being resumed past the breakpoint it stopped at."""
    checkpoint["versions_seen"][INTERRUPT] = dict(checkpoint["channel_versions"])
