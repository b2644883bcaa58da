"""The pure step algebra shared by the local and distributed runtimes.

No I/O happens here: no broker, no database, no event loop management. The
runtimes load a checkpoint, call :func:`plan_next_step`, run the tasks (each
through :func:`run_task`), call :func:`apply_writes`, and store the result of
:func:`create_checkpoint`.
"""

from lgdist.engine.apply import apply_writes
from lgdist.engine.checkpoint import channels_from_checkpoint, create_checkpoint, empty_checkpoint
from lgdist.engine.interrupts import mark_resumed, should_interrupt
from lgdist.engine.plan import plan_next_step
from lgdist.engine.spec import GraphSpec, NodeSpec
from lgdist.engine.tasks import Task

__all__ = [
    "GraphSpec",
    "NodeSpec",
    "Task",
    "plan_next_step",
    "apply_writes",
    "create_checkpoint",
    "empty_checkpoint",
    "channels_from_checkpoint",
    "should_interrupt",
    "mark_resumed",
]
