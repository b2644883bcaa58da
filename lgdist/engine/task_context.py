"""Per-task context read by ``interrupt()`` and ``get_stream_writer()``.

A context variable, so it follows the task into threads started with
``contextvars.copy_context()`` and into asyncio tasks.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from lgdist.constants import RESUME
from lgdist.engine.channels import MISSING
from lgdist.engine.ids import interrupt_id
from lgdist.errors import GraphInterrupt
from lgdist.types import Interrupt

_current: contextvars.ContextVar[Optional["TaskContext"]] = contextvars.ContextVar(
    "lgdist_task", default=None
)


@dataclass
class TaskContext:
    task_id: str
    node: str
    checkpoint_ns: str
    config: dict
    # Resume values already given to this task, in interrupt() call order.
    resume: list = field(default_factory=list)
    # A resume value not yet tied to a task (Command(resume=x) with one
    # pending interrupt); the first interrupt() past `resume` consumes it.
    unassigned_resume: Any = MISSING
    consumed_unassigned: bool = False
    stream_writer: Callable[[Any], None] = lambda chunk: None
    runtime: Any = None
    counter: int = 0

    def interrupt(self, value: Any, response_schema: Any = None) -> Any:
        index = self.counter
        self.counter += 1
        if index < len(self.resume):
            return self.resume[index]
        if self.unassigned_resume is not MISSING and not self.consumed_unassigned:
            self.consumed_unassigned = True
            self.resume.append(self.unassigned_resume)
            return self.unassigned_resume
        raise GraphInterrupt(
            [
                Interrupt(
                    value=value,
                    id=interrupt_id(self.checkpoint_ns, self.task_id, index),
                    response_schema=response_schema,
                )
            ]
        )

    def resume_write(self) -> tuple[str, Any] | None:
        """The write that records resume values used, so a re-run of the task
        after another interrupt replays them."""
        return (RESUME, list(self.resume)) if self.resume else None


def current_task_context() -> TaskContext:
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("Called get_config/interrupt outside of a runnable context")
    return ctx


def maybe_task_context() -> Optional[TaskContext]:
    return _current.get()


def set_task_context(ctx: Optional[TaskContext]) -> contextvars.Token:
    return _current.set(ctx)


def reset_task_context(token: contextvars.Token) -> None:
    _current.reset(token)
