"""``ThreadLoop``: one thread's supersteps against a checkpoint store.

It owns the I/O around the pure engine — loading the checkpoint, saving each
task's writes as it finishes, saving the next checkpoint — and records stream
chunks in an outbox. It does not run nodes: the local drivers (threads or
asyncio) and the Celery workers do, then report back. So the rules of a step
live once, and both runtimes produce the same checkpoints and events.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any, Callable, Optional, Sequence

from lgdist.checkpoint.base import BaseCheckpointSaver, Precondition, get_checkpoint_ns
from lgdist.constants import ERROR, INTERRUPT, NULL_TASK_ID, PULL, RESUME  # noqa: F401 (NULL_TASK_ID re-exported)
from lgdist.engine import (
    apply_writes,
    channels_from_checkpoint,
    empty_checkpoint,
    plan_next_step,
    should_interrupt,
)
from lgdist.engine.channels import MISSING
from lgdist.engine.checkpoint import copy_checkpoint, next_version
from lgdist.engine.namespace import namespace_tuple, task_namespace
from lgdist.engine.outcomes import PENDING, Outcome, TaskOutcome, task_outcome, task_outcomes
from lgdist.engine.resume import unpack_resume
from lgdist.engine.spec import GraphSpec
from lgdist.engine.task_context import TaskContext
from lgdist.engine.tasks import Task
from lgdist.errors import (
    ErrorCode,
    GraphRecursionError,
    create_error_message,
)
from lgdist.loop import events as ev
from lgdist.loop.checkpoint_writer import CheckpointWriter
from lgdist.loop.inputs import InputApplier
from lgdist.loop.node_cache import remember, take_cached
from lgdist.loop.outbox import StreamOutbox, _as_set
from lgdist.loop.write_behind import WriteBehind
from lgdist.types import Command, Interrupt

_READ = object()  # restore(): read the checkpoint from the store

# What restore() sets besides the pending writes and the resume map (which
# a sibling copies): shared by ``ThreadLoop.sibling``.
_RESTORED = (
    "checkpoint", "checkpoint_config", "parent_config", "metadata", "step", "saved_versions",
    "saved_versions_of", "channels", "may_hold", "stop", "applied_null_writes",
)  # fmt: skip

DEFAULT_RECURSION_LIMIT = int(os.environ.get("LGDIST_DEFAULT_RECURSION_LIMIT", "10007"))


class ThreadLoop(StreamOutbox, InputApplier, CheckpointWriter):
    """State of one invocation of a graph on one thread.

    ``parent`` is the task this graph runs inside when it is a subgraph: the
    loop then stores its checkpoints under that task's namespace (the config
    names it), records the enclosing checkpoints as ``parents``, continues
    from its checkpoint when the parent task is resuming, and forwards its
    stream chunks to the root stream when that asked for subgraphs.
    """

    def __init__(
        self,
        spec: GraphSpec,
        config: dict,
        *,
        saver: Optional[BaseCheckpointSaver],
        stream_modes: Sequence[str] = ("values",),
        interrupt_before: Any = None,
        interrupt_after: Any = None,
        output_keys: Any = None,
        stream_keys: Any = None,
        parent: Optional[TaskContext] = None,
        stream_subgraphs: bool = False,
        durability: Optional[str] = None,
    ) -> None:
        self.spec = spec
        self.config = config
        self.saver = saver
        self.modes = set(stream_modes)
        self.interrupt_before = interrupt_before if interrupt_before is not None else spec.interrupt_before
        self.interrupt_after = interrupt_after if interrupt_after is not None else spec.interrupt_after
        # output_keys shape "values" and "updates" chunks (the caller's
        # choice: the output schema for invoke, every state key for stream);
        # stream_keys shape checkpoint and task payloads, always the state.
        self.output_keys = output_keys if output_keys is not None else spec.output_keys
        self.stream_keys = stream_keys if stream_keys is not None else spec.stream_keys
        self.outbox: deque = deque()
        self.next_version: Callable = saver.get_next_version if saver else next_version
        self.status = "pending"
        self.tasks: dict[str, Task] = {}
        self.interrupts: list[Interrupt] = []
        self.checkpoint_ns = get_checkpoint_ns(config)
        self.recursion_limit = int(config.get("recursion_limit") or DEFAULT_RECURSION_LIMIT)
        # Tasks of this step whose interrupt was streamed already.
        self.announced_interrupts: set[str] = set()
        self.applied_null_writes = False
        # Channels that may hold a value the next step clears; None: any
        # (set by finish(), forgotten by whatever else applies writes).
        self.may_hold: Optional[set[str]] = None
        self.channel_position = {name: i for i, name in enumerate(spec.channels)}
        # How often checkpoints are stored, as LangGraph's durability:
        # "sync" and "async" every step (the history is the same), "exit"
        # only when the run stops (see flush).
        if durability not in (None, "sync", "async", "exit"):
            raise ValueError(f"durability must be 'sync', 'async' or 'exit', not {durability!r}")
        self.durability = durability or "sync"
        # Set by a driver that stores in the background (durability
        # "async", see write_behind.py); None stores before going on.
        self.write_behind: Optional[WriteBehind] = None
        self.unstored = False
        self.saved_versions_of: Optional[str] = None  # the checkpoint saved_versions are of
        self.stored_config: Optional[dict] = None
        self.unstored_metadata: dict = {}
        self.deferred_writes: list = []
        # Tasks recorded with save=False: their writes are stored with the
        # step's checkpoint, in the same transaction.
        self.unsaved: list[Task] = []
        # Tasks of this step that stopped at an interrupt (a subgraph that
        # hit a static breakpoint stops its task with no interrupt value).
        self.interrupted_tasks: set[str] = set()
        # -- subgraphs ---------------------------------------------------------
        self.parent = parent
        self.namespace = namespace_tuple(self.checkpoint_ns)
        self.parents: dict[str, str] = dict(parent.checkpoint_map) if parent else {}
        self.resuming = False
        self.resume_map: dict = dict(parent.resume_map) if parent else {}
        if parent is not None:
            self.sink = parent.sink
            self.sink_modes = parent.sink_modes
        elif stream_subgraphs:
            self.sink = lambda ns, mode, chunk: self.outbox.append((mode, chunk, ns))
            self.sink_modes = frozenset(self.modes)
        else:
            self.sink = None
            self.sink_modes = frozenset()

    def subgraph_config(self, task: Task) -> dict:
        """Where a subgraph run by ``task`` keeps its checkpoints."""
        return {
            "configurable": {
                "thread_id": self._thread_id(),
                "checkpoint_ns": task_namespace(self.checkpoint_ns, task.name, task.id),
            }
        }

    # -- loading ----------------------------------------------------------------
    def load(self, input: Any, *, idempotency_key: Optional[str] = None) -> None:
        """Load the thread's checkpoint and apply the input (new input, a
        resume ``Command``, or ``None`` to continue). A checkpoint the input
        stores (an input or fork checkpoint) is stored under
        ``idempotency_key`` when one is given: a second load with the same
        key stores nothing and raises :class:`StepAlreadyFinished`."""
        saved = self.restore()
        has_state = saved is not None and bool(saved.checkpoint["channel_versions"])
        if self.parent is not None:
            # A subgraph whose task is resuming continues where it stopped;
            # the input its parent passes again is not applied a second time.
            self.resuming = self.parent.resuming and has_state
            if self.resuming:
                input = None
        else:
            self.resuming = has_state and (input is None or isinstance(input, Command))
        self._apply_input(input, saved, idempotency_key)

    def restore(self, saved: Any = _READ) -> Any:
        """Load the checkpoint named by the config (or the thread's latest)
        into channels, with its pending writes. Returns the saved tuple.
        A caller that read the checkpoint already (with other rows, on one
        connection) passes it as ``saved``."""
        if saved is _READ:
            saved = self.saver.get_tuple(self.config) if self.saver and self._thread_id() else None
        if saved is not None:
            self.checkpoint = copy_checkpoint(saved.checkpoint)
            self.checkpoint_config = saved.config
            self.parent_config = saved.parent_config
            self.metadata = saved.metadata
            self.pending_writes = list(saved.pending_writes or [])
            self.step = saved.metadata.get("step", -2) + 1
            self.saved_versions = dict(saved.checkpoint["channel_versions"])
            self.saved_versions_of = saved.checkpoint["id"]
        else:
            self.saved_versions = {}
            self.saved_versions_of = None
            self.checkpoint = empty_checkpoint()
            self.checkpoint_config = {
                "configurable": {
                    "thread_id": self._thread_id(),
                    "checkpoint_ns": self.checkpoint_ns,
                }
            }
            self.parent_config = None
            self.metadata = {"step": -2}
            self.pending_writes = []
            self.step = -1
        self.channels = channels_from_checkpoint(self.spec.channels, self.checkpoint)
        self.may_hold = None
        self.stop = self.step + self.recursion_limit + 1
        self.applied_null_writes = False
        for task_id, chan, value in self.pending_writes:
            if task_id == NULL_TASK_ID and chan == RESUME:
                self.resume_map.update(unpack_resume(value)[1])
        self._apply_null_writes([(c, v) for t, c, v in self.pending_writes if t == NULL_TASK_ID])
        return saved

    def sibling(self) -> "ThreadLoop":
        """A loop at this loop's restored checkpoint, for another task of
        the same step (a worker runs several tasks of one wide step and
        restores the step once). It shares the checkpoint and the channels:
        running a task only reads them (its writes go to the task, and
        whoever finishes the step applies them, on a loop of its own). Its
        tasks, records, outbox and pending writes are its own."""
        new = ThreadLoop(
            self.spec, self.config, saver=self.saver, stream_modes=tuple(self.modes),
            interrupt_before=self.interrupt_before, interrupt_after=self.interrupt_after,
            output_keys=self.output_keys, stream_keys=self.stream_keys, parent=self.parent,
            stream_subgraphs=self.parent is None and self.sink is not None, durability=self.durability,
        )  # fmt: skip
        for name in _RESTORED:
            setattr(new, name, getattr(self, name))
        new.pending_writes = list(self.pending_writes)
        new.resume_map = dict(self.resume_map)
        return new

    def _superseded(self) -> bool:
        """Whether the thread went on past the checkpoint the config names."""
        if self.saver is None:
            return False
        latest = self.saver.get_tuple(
            {"configurable": {"thread_id": self._thread_id(), "checkpoint_ns": self.checkpoint_ns}}
        )
        return latest is not None and latest.config["configurable"].get("checkpoint_id") != self.checkpoint["id"]

    def _thread_id(self) -> Optional[str]:
        configurable = self.config.get("configurable") or {}
        return configurable.get("thread_id")

    # -- a superstep --------------------------------------------------------------
    def plan(self, *, idempotency_key: Optional[str] = None) -> list[Task]:
        """Plan the next step. Returns the tasks that must run now; tasks whose
        writes were saved earlier are restored instead of re-run. An empty
        list with ``status`` set means the loop is over. A checkpoint this
        stores (a Command's update with nothing left to run) is stored under
        ``idempotency_key``."""
        if self.step > self.stop:
            raise GraphRecursionError(
                create_error_message(
                    message=f"Recursion limit of {self.recursion_limit} reached without hitting a "
                    "stop condition. You can increase the limit by setting the `recursion_limit` "
                    "config key.",
                    error_code=ErrorCode.GRAPH_RECURSION_LIMIT,
                )
            )
        self.tasks = plan_next_step(
            self.spec, self.checkpoint, self.channels, self.step, checkpoint_ns=self.checkpoint_ns
        )
        if not self.tasks:
            if self.applied_null_writes:
                # A Command's update with nothing left to run: keep it in a
                # checkpoint of its own.
                self._put_checkpoint(
                    "loop", set(self.checkpoint.get("updated_channels") or ()), idempotency_key=idempotency_key
                )
                self.step += 1
                self.pending_writes = []
                self.applied_null_writes = False
            self.status = "done"
            return []
        outcomes = task_outcomes(self.pending_writes)
        to_run: list[Task] = []
        restored: list[Task] = []
        for task in self.tasks.values():
            # A task that completed once is not re-run; interrupt, error or
            # resume records alone mean it must.
            outcome = outcomes.get(task.id, PENDING)
            if outcome.completed:
                task.writes = outcome.writes
                restored.append(task)
            else:
                to_run.append(task)
        if self.interrupt_before and should_interrupt(self.checkpoint, self.interrupt_before, to_run):
            self.status = "interrupt_before"
            if self.parent is None:  # a subgraph's breakpoint is reported by its parent
                self.emit("updates", {INTERRUPT: ()})
            self._emit_values_interrupt(())
            return []
        for task in self.tasks.values():
            self.emit_task_start(task)
        for task in restored:
            self._emit_cached_update(task)
        to_run, hits = take_cached(self.spec.cache, to_run)
        for task in hits:
            # Saved like the task's own writes; streamed as "updates" only.
            if self.saver:
                self._save_writes(task.id, task.writes)
            self._emit_cached_update(task)
        return to_run

    def _emit_cached_update(self, task: Task) -> None:
        """The updates chunk of a task that did not run now (restored from
        saved writes or from the node cache)."""
        if not task.hidden and "updates" in self.modes:
            update = {task.name: ev.task_update(task, self.output_keys), "__metadata__": {"cached": True}}
            self.outbox.append(("updates", update))

    def collect(self) -> tuple[list[Task], list[tuple[Task, str]]]:
        """Rebuild the current step's tasks from their saved writes (the
        distributed ``finish_step``: the tasks ran elsewhere), without
        reading any task's input. Streams their updates and gathers
        interrupts. Returns the tasks with no saved outcome and the failed
        tasks with their error text."""
        self.tasks = plan_next_step(
            self.spec, self.checkpoint, self.channels, self.step, checkpoint_ns=self.checkpoint_ns,
            read_inputs=False,
        )
        outcomes = task_outcomes(self.pending_writes)
        missing: list[Task] = []
        failed: list[tuple[Task, str]] = []
        for task in self.tasks.values():
            outcome = outcomes.get(task.id, PENDING)
            if outcome.kind is Outcome.COMPLETED:
                task.writes = outcome.writes
                self._emit_task_done(task)
            elif outcome.kind is Outcome.INTERRUPTED:
                task.writes = outcome.writes
                self.interrupted_tasks.add(task.id)
                self.interrupts.extend(outcome.interrupts)
            elif outcome.kind is Outcome.FAILED:
                failed.append((task, outcome.error or ""))
            else:
                missing.append(task)
        return missing, failed

    def plan_task(self, task_id: str) -> Optional[Task]:
        """One task of the current step, ready to run (a worker running one
        task of a wide step): the step is planned without reading any
        input, then this task's input is read once. ``None`` when the step
        has no such task."""
        self.tasks = plan_next_step(
            self.spec, self.checkpoint, self.channels, self.step, checkpoint_ns=self.checkpoint_ns,
            read_inputs=False,
        )
        task = self.tasks.get(task_id)
        if task is not None and task.node is not None and task.path and task.path[0] == PULL:
            task.input = task.node.read_input(self.channels)
        return task

    def outcome(self, task: Task) -> TaskOutcome:
        """What the writes saved for ``task`` at this checkpoint say."""
        return task_outcome([(c, v) for t, c, v in self.pending_writes if t == task.id])

    def resume_values(self, task: Task) -> tuple[list, Any]:
        """Resume values already recorded for ``task`` and the unassigned one."""
        resume: list = []
        unassigned: Any = MISSING
        for task_id, chan, value in self.pending_writes:
            if chan != RESUME:
                continue
            if task_id == task.id:
                resume = list(value)
            elif task_id == NULL_TASK_ID:
                unassigned = unpack_resume(value)[0]
        return resume, unassigned

    def task_context(self, task: Task, config: dict, **kwargs: Any) -> TaskContext:
        """The context ``task`` runs in: its resume answers, and what a
        subgraph it runs inherits from this graph."""
        resume, unassigned = self.resume_values(task)
        started_before = any(t == task.id for t, _, _ in self.pending_writes)
        return TaskContext(
            task_id=task.id,
            node=task.name,
            checkpoint_ns=config["configurable"]["checkpoint_ns"],
            config=config,
            resume=resume,
            unassigned_resume=unassigned,
            resume_map=self.resume_map,
            parent=self.parent,
            saver=self.saver,
            resuming=self.resuming or started_before,
            checkpoint_map={**self.parents, self.checkpoint_ns: self.checkpoint["id"]},
            sink=self.sink,
            sink_modes=self.sink_modes,
            **kwargs,
        )

    def record(self, task: Task, error: Optional[BaseException] = None, *, save: bool = True) -> None:
        """A task finished: save its writes (idempotently) and stream them.
        ``save=False`` saves a completed task's writes later, together with
        the step's checkpoint (one transaction instead of two)."""
        if error is not None and not any(c == INTERRUPT for c, _ in task.writes):
            if self.saver and save:
                # Stored as repr(error) text, as LangGraph does: the exception
                # itself may not be serializable, and this is what a
                # snapshot's PregelTask.error shows.
                self._save_writes(task.id, [(ERROR, repr(error))])
            if not task.hidden and {"tasks", "debug"} & self.modes:
                payload = {**ev.task_result(task, self.stream_keys), "error": error}
                self.emit("tasks", payload)
                self.emit("debug", ev.debug_event("task_result", self.step, payload))
            return
        if self.saver and save:
            self._save_writes(task.id, task.writes)
        elif self.saver and self._thread_id() is not None and not any(c == INTERRUPT for c, _ in task.writes):
            self.unsaved.append(task)
        elif self.saver:
            self._save_writes(task.id, task.writes)
        if any(c == INTERRUPT for c, _ in task.writes):
            interrupts = [i for c, v in task.writes if c == INTERRUPT for i in v]
            self.interrupted_tasks.add(task.id)
            self.interrupts.extend(interrupts)
            self._emit_task_interrupted(task, interrupts)
            return
        remember(self.spec.cache, task)
        self._emit_task_done(task)

    def finish(self, *, idempotency_key: Optional[str] = None, precondition: Optional[Precondition] = None) -> None:
        """All tasks of the step finished: stop at interrupts, else apply the
        writes and save the next checkpoint, under ``idempotency_key`` when
        given (``step:<parent id>``: a second finish of the same step stores
        nothing and raises :class:`StepAlreadyFinished`). ``precondition``
        runs in the store's transaction first (see ``BaseCheckpointSaver.put``)."""
        if self.interrupts or self.interrupted_tasks:
            self.status = "interrupted"
            for task in self.tasks.values():
                if task.id in self.interrupted_tasks and task.id not in self.announced_interrupts:
                    ints = [i for c, v in task.writes if c == INTERRUPT for i in v]
                    self._emit_task_interrupted(task, ints)
            self._emit_values_so_far()
            return
        tasks = list(self.tasks.values())
        # Between two finishes nothing else changes the channels, so the
        # last step's updates are all a step may clear, and only the
        # channels whose version changes need reading into the checkpoint.
        may_hold = self.may_hold
        changed: Optional[set[str]] = set() if may_hold is not None else None
        updated = apply_writes(
            self.checkpoint, self.channels, tasks, self.next_version, self.spec.trigger_to_nodes,
            may_hold=None if may_hold is None else sorted(may_hold, key=self.channel_position.__getitem__),
            changed=changed,
        )
        self.applied_null_writes = False
        if updated & _as_set(self.output_keys):
            self._emit_values()
        self._put_checkpoint(
            "loop", updated, idempotency_key=idempotency_key, precondition=precondition, changed=changed
        )
        self.may_hold = updated if any(task.triggers for task in tasks) else None
        ran = [t for t in tasks if t.node is not None]
        self.step += 1
        self.pending_writes = []
        if self.interrupt_after and should_interrupt(self.checkpoint, self.interrupt_after, ran):
            self.status = "interrupt_after"
            if self.parent is None:
                self.emit("updates", {INTERRUPT: ()})
            self._emit_values_interrupt(())
