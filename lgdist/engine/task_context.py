"""Per-task context read by ``interrupt()`` and ``get_stream_writer()``.

A context variable, so it follows the task into threads started with
``contextvars.copy_context()`` and into asyncio tasks. A graph invoked while
a task runs (a subgraph) finds its parent task here: that is how it inherits
the checkpointer, its checkpoint namespace, resume answers and the stream.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from lgdist.constants import RESUME
from lgdist.engine.channels import MISSING
from lgdist.engine.ids import interrupt_id
from lgdist.errors import GraphInterrupt
from lgdist.types import Interrupt

_current: contextvars.ContextVar[Optional["TaskContext"]] = contextvars.ContextVar(
    "lgdist_task", default=None
)

# Sink for a subgraph's stream chunks: (namespace tuple, mode, chunk).
SubgraphSink = Callable[[tuple, str, Any], None]


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
    # Answers by interrupt id (Command(resume={id: value})), shared by every
    # graph nested in the resumed one: an id is unique to one interrupt() call.
    resume_map: Mapping[str, Any] = field(default_factory=dict)
    # -- what a graph run inside this task inherits ------------------------
    # The task of the enclosing graph, when this task's graph is a subgraph.
    parent: Optional["TaskContext"] = None
    saver: Any = None
    # Whether the task continues earlier work (a resume, or a re-run after
    # an interrupt or error): a subgraph then continues from its checkpoint
    # instead of starting over with its input.
    resuming: bool = False
    # Checkpoint id of every enclosing graph by namespace, this task's own
    # graph included (a subgraph's checkpoints record it as "parents").
    checkpoint_map: dict = field(default_factory=dict)
    sink: Optional[SubgraphSink] = None
    sink_modes: frozenset = frozenset()
    # -- the node's run in the callback tree ----------------------------------
    # The task's node computes its writes inside its own run (so the routers
    # of its conditional edges are children of that run): ``write_in_run``
    # (and its async twin) is what the node calls with its output, when it
    # is ``node_bound``; ``node_run`` is the node's run manager meanwhile.
    node_bound: Any = None
    write_in_run: Optional[Callable[[Any], None]] = None
    awrite_in_run: Optional[Callable[[Any], Any]] = None
    node_run: Any = None

    def interrupt(self, value: Any, response_schema: Any = None) -> Any:
        index = self.counter
        self.counter += 1
        if index < len(self.resume):
            return self.resume[index]
        iid = interrupt_id(self.checkpoint_ns, self.task_id, index)
        if iid in self.resume_map:
            answer = self.resume_map[iid]
            self.resume.append(answer)
            return answer
        answer = self.take_unassigned_resume()
        if answer is not MISSING:
            self.resume.append(answer)
            return answer
        raise GraphInterrupt([Interrupt(value=value, id=iid, response_schema=response_schema)])

    def take_unassigned_resume(self) -> Any:
        """Consume the resume value not tied to a task, if any is left. A
        subgraph's task takes it from the enclosing task, so exactly one
        interrupt() anywhere below the resumed task gets it."""
        if self.consumed_unassigned:
            return MISSING
        if self.unassigned_resume is not MISSING:
            self.consumed_unassigned = True
            return self.unassigned_resume
        if self.parent is not None:
            answer = self.parent.take_unassigned_resume()
            if answer is not MISSING:
                self.consumed_unassigned = True
            return answer
        return MISSING

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
