"""The input side of :class:`~lgdist.loop.thread_loop.ThreadLoop`: new input, a
resume ``Command`` (resume values, state update, goto) or ``None`` applied to
the loaded checkpoint before the first step is planned."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from lgdist.checkpoint.base import get_checkpoint_id
from lgdist.constants import ERROR, INPUT_TASK_NAME, INTERRUPT, NULL_TASK_ID, RESUME
from lgdist.engine import apply_writes, mark_resumed, plan_next_step
from lgdist.engine.outcomes import is_output
from lgdist.engine.resume import pack_resume_map
from lgdist.engine.tasks import Task
from lgdist.errors import AmbiguousResumeError, EmptyInputError
from lgdist.types import Command, Interrupt


class InputApplier:
    """Mixin of ThreadLoop: how the graph's input meets the saved thread."""

    def _apply_null_writes(self, writes: Sequence[tuple[str, Any]]) -> None:
        """Apply a ``Command``'s update/goto (the "null task"'s writes) on top
        of the loaded checkpoint, before the step is planned: the step's tasks
        read the updated state and a goto's node runs in this very step.

        Every process that restores the checkpoint (the local loop, each
        distributed node task, ``finish_step``) applies the same saved writes,
        so they all plan the same tasks and see the same input."""
        state_writes = [(c, v) for c, v in writes if c not in (RESUME, INTERRUPT, ERROR)]
        if not state_writes:
            return
        null_task = Task(NULL_TASK_ID, "__null__", (), None, (), None)  # type: ignore[arg-type]
        null_task.writes = state_writes
        updated = apply_writes(self.checkpoint, self.channels, [null_task], self.next_version)
        self.may_hold = None
        previous = self.checkpoint.get("updated_channels")
        if previous is not None:
            self.checkpoint["updated_channels"] = sorted(set(previous) | updated)
        self.applied_null_writes = True

    def _apply_input(self, input: Any, saved: Any, idempotency_key: Optional[str] = None) -> None:
        if isinstance(input, Command) or input is None:
            if saved is None and (input is None or input.resume is not None):
                if input is None:
                    raise EmptyInputError(f"Received no input for {self.spec.input_channel}")
                raise EmptyInputError("Cannot resume: this thread has no checkpoint to resume from")
            # Time travel: continuing from a checkpoint the config names
            # (except to answer its interrupts) replays it, so the writes its
            # tasks saved belong to the branch that already went on from there.
            replay = (
                saved is not None
                and get_checkpoint_id(self.config) is not None
                and not (isinstance(input, Command) and input.resume is not None)
            )
            if replay:
                self.pending_writes = [w for w in self.pending_writes if w[0] == NULL_TASK_ID]
            writes = self._apply_command(input, persist=not replay) if isinstance(input, Command) else []
            self._apply_null_writes(writes)
            mark_resumed(self.checkpoint)
            self._emit_values()
            if replay and (self.metadata.get("source") not in ("update", "fork") or self._superseded()):
                # The replay starts a new branch: a copy of the checkpoint
                # (with the Command's writes) as its first checkpoint.
                updated = self.checkpoint.get("updated_channels")
                self._put_checkpoint(
                    "fork", set(updated) if updated is not None else None, idempotency_key=idempotency_key
                )
                self.step += 1
                self.pending_writes = []
                self.applied_null_writes = False  # they are in the fork
            elif {"checkpoints", "debug"} & self.modes:
                # Continuing: report the checkpoint the thread continues from.
                interrupts: dict[str, list] = {}
                for task_id, chan, value in self.pending_writes:
                    if chan == INTERRUPT:
                        interrupts[task_id] = [
                            {"value": i.value, "id": i.id, "response_schema": i.response_schema} for i in value
                        ]
                tasks = plan_next_step(
                    self.spec, self.checkpoint, self.channels, self.step,
                    checkpoint_ns=self.checkpoint_ns, read_inputs=False,
                )
                self._emit_checkpoint(tasks.values(), interrupts)
        else:
            # New input discards the previous step's unfinished work, as in
            # LangGraph: its tasks count as run without writes (their
            # triggers seen, their Send packets consumed), so only the
            # input's own tasks run next.
            discarded: list[Task] = []
            if saved is not None:
                discarded = list(
                    plan_next_step(
                        self.spec, self.checkpoint, self.channels, self.step,
                        checkpoint_ns=self.checkpoint_ns, read_inputs=False,
                    ).values()
                )  # fmt: skip
                for task in discarded:
                    task.writes = []
            self.pending_writes = []
            input_task = Task("", INPUT_TASK_NAME, (), None, (), None)  # type: ignore[arg-type]
            input_task.writes = [(self.spec.input_channel, input)]
            updated = apply_writes(self.checkpoint, self.channels, [*discarded, input_task], self.next_version)
            self.may_hold = None
            self._put_checkpoint("input", updated, idempotency_key=idempotency_key)
            self.step += 1

    def _apply_command(self, cmd: Command, *, persist: bool = True) -> list[tuple[str, Any]]:
        """A resume/update/goto passed as graph input becomes writes of a
        'null task', saved as pending writes of the current checkpoint
        (unless ``persist`` is false) and returned."""
        writes: list[tuple[str, Any]] = []
        if cmd.resume is not None:
            interrupted = self._interrupted_tasks_from_pending()
            if isinstance(cmd.resume, dict) and cmd.resume and all(
                any(i.id == k for ints in interrupted.values() for i in ints) for k in cmd.resume
            ):
                # Answers by interrupt id: the interrupt may sit in this
                # graph's task or in a subgraph below it; the interrupt()
                # call with that id takes its answer wherever it runs.
                self.resume_map = {**self.resume_map, **cmd.resume}
                writes.append((RESUME, pack_resume_map(self.resume_map)))
            else:
                n_pending = sum(len(v) for v in interrupted.values())
                if n_pending > 1:
                    raise AmbiguousResumeError(
                        "When there are multiple pending interrupts, you must specify the "
                        "interrupt id when resuming. Docs: "
                        "https://docs.langchain.com/oss/python/langgraph/interrupts#handling-multiple-interrupts."
                    )
                writes.append((RESUME, cmd.resume))
        if cmd.update is not None:

            for key, value in cmd._update_as_tuples():
                writes.append((key, value))
        if cmd.goto:
            from lgdist.graph.branch import destinations_to_writes

            gotos = cmd.goto if isinstance(cmd.goto, (list, tuple)) else [cmd.goto]
            writes.extend(destinations_to_writes(gotos))
        if writes and persist:
            if any(c == RESUME for c, _ in writes):
                # A new answer replaces an older unassigned one (the store
                # keeps one resume slot per task, too).
                self.pending_writes = [
                    w for w in self.pending_writes if not (w[0] == NULL_TASK_ID and w[1] == RESUME)
                ]
            self.pending_writes.extend((NULL_TASK_ID, c, v) for c, v in writes)
            if self.saver:
                self._save_writes(NULL_TASK_ID, writes)
        return writes

    def _interrupted_tasks_from_pending(self) -> dict[str, list[Interrupt]]:
        """Interrupts still waiting for an answer: those of tasks that have
        not finished since (a finished task saved some output write)."""
        out: dict[str, list[Interrupt]] = {}
        finished: set[str] = set()
        for task_id, chan, value in self.pending_writes:
            if task_id == NULL_TASK_ID:
                continue
            if chan == INTERRUPT:
                out[task_id] = list(value)
            elif is_output(chan):
                finished.add(task_id)
        return {t: ints for t, ints in out.items() if t not in finished}
