"""What a task's saved writes mean: the one place the rule lives.

A task's pending writes mix state writes with bookkeeping records: an
interrupt it raised (``__interrupt__``), its error text (``__error__``), the
resume answers it was given (``__resume__``), and the marker of a task that
completed without writing (``__no_writes__``). The rule every reader needs:

* **completed** — it saved some output: a state write or the no-writes marker
  (records of an earlier interrupt, error or resume do not count);
* **interrupted** — no output, but an interrupt record;
* **failed** — no output, no interrupt, an error record;
* **pending** — none of these: the task has not run (or its run was lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Optional, Sequence

from lgdist.constants import ERROR, INTERRUPT, NO_WRITES, RESUME

# Records of how a task went (not its output).
BOOKKEEPING = frozenset({ERROR, INTERRUPT, RESUME})
# Writes stored as pending writes that are not state.
SPECIAL_WRITES = BOOKKEEPING | {NO_WRITES}


class Outcome(str, Enum):
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True)
class TaskOutcome:
    """A task's outcome read off its saved writes.

    ``writes`` are the writes that stand for the outcome: its output
    (no-writes marker included) when completed, its interrupt records when
    interrupted, nothing otherwise. ``interrupts`` are the interrupt values
    it raised (also listed for a completed task that raised before, for
    snapshots), ``error`` its error text.
    """

    kind: Outcome
    writes: list = field(default_factory=list)
    interrupts: list = field(default_factory=list)
    error: Optional[str] = None

    @property
    def completed(self) -> bool:
        return self.kind is Outcome.COMPLETED

    @property
    def state_writes(self) -> list:
        """The output without the no-writes marker: what updates channels."""
        return [w for w in self.writes if w[0] != NO_WRITES]


PENDING = TaskOutcome(Outcome.PENDING)


def is_output(channel: str) -> bool:
    """Whether a write on ``channel`` is a task's output (state or the
    no-writes marker) rather than a bookkeeping record."""
    return channel not in BOOKKEEPING


def task_outcome(saved: Sequence[tuple[str, Any]]) -> TaskOutcome:
    """The outcome of one task from its saved ``(channel, value)`` writes."""
    if not saved:
        return PENDING
    output = [w for w in saved if w[0] not in BOOKKEEPING]
    interrupts = [i for c, v in saved if c == INTERRUPT for i in v]
    error = next((str(v) for c, v in saved if c == ERROR), None)
    if output:
        return TaskOutcome(Outcome.COMPLETED, output, interrupts, error)
    if any(c == INTERRUPT for c, _ in saved):
        return TaskOutcome(Outcome.INTERRUPTED, [w for w in saved if w[0] == INTERRUPT], interrupts, error)
    if error is not None:
        return TaskOutcome(Outcome.FAILED, [], interrupts, error)
    return TaskOutcome(Outcome.PENDING, [], interrupts, error)


def writes_by_task(pending_writes: Iterable[tuple[str, str, Any]]) -> dict[str, list[tuple[str, Any]]]:
    """``(task_id, channel, value)`` rows grouped per task, in stored order."""
    by_task: dict[str, list[tuple[str, Any]]] = {}
    for task_id, channel, value in pending_writes:
        by_task.setdefault(task_id, []).append((channel, value))
    return by_task


def task_outcomes(pending_writes: Iterable[tuple[str, str, Any]]) -> dict[str, TaskOutcome]:
    """Every task's outcome, by task id (tasks without rows are absent)."""
    return {task_id: task_outcome(saved) for task_id, saved in writes_by_task(pending_writes).items()}


def completed_tasks(pending_writes: Iterable[tuple[str, str, Any]]) -> set[str]:
    """Ids of the tasks whose saved writes say they completed."""
    return {task_id for task_id, channel, _ in pending_writes if is_output(channel)}
