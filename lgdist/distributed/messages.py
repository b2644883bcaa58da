"""The payloads of lgdist's Celery tasks: versioned pydantic models.

Every task validates its arguments against its model before touching any
state; a malformed message fails with a clear error and changes nothing.
``ResumeMessage`` is the documented way for any program to resume a thread:

    celery_app.send_task("lgdist.resume", kwargs={
        "v": 1, "thread_id": "4", "resume": "yes"})
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROTOCOL_VERSION = 1


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1


class StartMessage(_Message):
    """Begin a run created by the client (its input lives in the run row)."""

    run_id: str = Field(min_length=1, max_length=64)


class ResumeMessage(_Message):
    """Resume an interrupted (or failed) thread.

    ``resume`` is the value ``interrupt()`` returns (or a map of interrupt id
    to value); ``update`` is a state update applied as ``as_node``; with
    neither, the thread simply continues (past a static breakpoint).
    """

    thread_id: str = Field(min_length=1, max_length=255)
    resume: Optional[Any] = None
    update: Optional[dict[str, Any]] = None
    as_node: Optional[str] = None
    goto: Optional[str] = None
    graph: Optional[str] = Field(default=None, max_length=255)
    run_id: Optional[str] = Field(default=None, max_length=64)
    stream_mode: list[str] = Field(default_factory=lambda: ["values"])
    # When the resumed run's steps are stored, as ``invoke``'s ``durability``
    # (LangGraph's default: "async").
    durability: Literal["sync", "async", "exit"] = "async"

    @model_validator(mode="after")
    def _as_node_needs_update(self) -> "ResumeMessage":
        if self.as_node and self.update is None:
            raise ValueError("as_node is only meaningful together with update")
        return self


class RunNodeMessage(_Message):
    """Run one task of a step. State is read from the checkpoint store by
    reference (``checkpoint_id``, ``task_id``); it never rides the broker
    (a wide step's task writes go back through Redis, not in a message)."""

    run_id: str = Field(min_length=1, max_length=64)
    thread_id: str = Field(min_length=1, max_length=255)
    graph: str = Field(min_length=1, max_length=255)
    checkpoint_id: str = Field(min_length=1, max_length=64)
    task_id: str = Field(min_length=1, max_length=64)
    node: str = Field(min_length=1, max_length=255)
    # The task is the step's only one: the same task also finishes the step
    # (stores the next checkpoint and sends the next step; no chord).
    finish: bool = False
    # With ``finish``: the step is the one a resuming run starts from.
    resumed: bool = False
    # Whether the step's checkpoint had saved writes when it was sent (a
    # resume's answers, a Command's update, outcomes of earlier attempts):
    # a wide step's task reads them only then, or when redelivered.
    step_has_writes: bool = True


class FinishStepMessage(_Message):
    run_id: str = Field(min_length=1, max_length=64)
    thread_id: str = Field(min_length=1, max_length=255)
    graph: str = Field(min_length=1, max_length=255)
    checkpoint_id: str = Field(min_length=1, max_length=64)
    resumed: bool = False
