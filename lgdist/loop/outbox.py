"""The stream side of :class:`~lgdist.loop.thread_loop.ThreadLoop`: turning a
step's progress into ``(mode, chunk)`` entries of its outbox, per stream mode
(and forwarding them to the root stream for ``subgraphs=True``)."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

from lgdist.constants import INTERRUPT
from lgdist.engine import apply_writes
from lgdist.engine.checkpoint import copy_checkpoint
from lgdist.engine.namespace import with_checkpoint_map
from lgdist.engine.outcomes import task_outcome
from lgdist.engine.tasks import Task
from lgdist.loop import events as ev
from lgdist.types import Interrupt


class StreamOutbox:
    """Mixin of ThreadLoop: everything that appends to ``self.outbox``."""

    def emit(self, mode: str, chunk: Any) -> None:
        if mode in self.modes:
            self.outbox.append((mode, chunk))

    def _emit_values(self, extra: Optional[dict] = None) -> None:
        if "values" in self.modes:
            values = ev.read_values(self.channels, self.output_keys)
            if extra and isinstance(values, dict):
                values = {**values, **extra}
            self.outbox.append(("values", values))

    def _emit_checkpoint(self, tasks: Iterable[Task], interrupts_by_task: Optional[dict] = None) -> None:
        # Without a checkpointer there are no checkpoints to report.
        if not ({"checkpoints", "debug"} & self.modes) or self.saver is None:
            return
        tasks = list(tasks)
        payload = ev.checkpoint_payload(
            with_checkpoint_map(self.checkpoint_config, self.metadata),
            with_checkpoint_map(self.parent_config, self.metadata),
            ev.read_values(self.channels, self.stream_keys),
            self.metadata,
            tasks,
            interrupts_by_task,
            {t.id: self.subgraph_config(t) for t in tasks if t.node is not None and t.node.subgraph is not None},
        )
        self.emit("checkpoints", payload)
        self.emit("debug", ev.debug_event("checkpoint", self.metadata["step"], payload))

    def emit_task_start(self, task: Task) -> None:
        if task.hidden or not ({"tasks", "debug"} & self.modes):
            return
        payload = ev.task_start(task)
        self.emit("tasks", payload)
        self.emit("debug", ev.debug_event("task", self.step, payload))

    def _emit_task_done(self, task: Task) -> None:
        if task.hidden:
            return
        if "updates" in self.modes:
            self.outbox.append(("updates", {task.name: ev.task_update(task, self.output_keys)}))
        if {"tasks", "debug"} & self.modes:
            payload = ev.task_result(task, self.stream_keys)
            self.emit("tasks", payload)
            self.emit("debug", ev.debug_event("task_result", self.step, payload))

    def _emit_task_interrupted(self, task: Task, interrupts: Sequence[Interrupt]) -> None:
        self.announced_interrupts.add(task.id)
        self.emit("updates", {INTERRUPT: tuple(interrupts)})
        self._emit_values_interrupt(tuple(interrupts))
        if {"tasks", "debug"} & self.modes:
            payload = ev.task_result(task, self.stream_keys)
            self.emit("tasks", payload)
            self.emit("debug", ev.debug_event("task_result", self.step, payload))

    def _emit_values_so_far(self) -> None:
        """An interrupted step saves no checkpoint, but the tasks that did
        finish count: stream the values as they would be with their writes
        (on copies; the step is applied for real once it completes)."""
        finished = [t for t in self.tasks.values() if task_outcome(t.writes).completed]
        if not finished or "values" not in self.modes:
            return
        channels = {name: chan.copy() for name, chan in self.channels.items()}
        updated = apply_writes(copy_checkpoint(self.checkpoint), channels, finished, self.next_version)
        if updated & _as_set(self.output_keys):
            self.outbox.append(("values", ev.read_values(channels, self.output_keys)))

    def _emit_values_interrupt(self, interrupts: tuple) -> None:
        if "values" in self.modes and interrupts:
            self._emit_values({INTERRUPT: interrupts})


def _as_set(keys: Any) -> set:
    return {keys} if isinstance(keys, str) else set(keys)
