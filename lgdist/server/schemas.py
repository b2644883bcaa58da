"""Request bodies of the LangGraph Server API, as ``langgraph-sdk`` sends
them. Unknown fields are ignored (newer clients send more); a field of the
wrong type or an unknown enum value is a 422."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

StreamMode = Literal[
    "values", "updates", "messages", "messages-tuple", "custom", "debug", "tasks", "checkpoints", "events"
]
MultitaskStrategy = Literal["reject", "enqueue", "interrupt", "rollback"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CheckpointRef(_Body):
    thread_id: Optional[str] = None
    checkpoint_ns: Optional[str] = ""
    checkpoint_id: Optional[str] = None
    checkpoint_map: Optional[dict] = None


class CommandBody(_Body):
    resume: Any = None
    update: Any = None
    goto: Union[str, list, dict, None] = None


class RunCreate(_Body):
    assistant_id: str = Field(min_length=1)
    input: Any = None
    command: Optional[CommandBody] = None
    config: Optional[dict] = None
    context: Optional[dict] = None
    metadata: Optional[dict] = None
    stream_mode: Union[StreamMode, list[StreamMode], None] = None
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    interrupt_before: Union[Literal["*"], list[str], None] = None
    interrupt_after: Union[Literal["*"], list[str], None] = None
    checkpoint: Optional[CheckpointRef] = None
    checkpoint_id: Optional[str] = None
    multitask_strategy: Optional[MultitaskStrategy] = None
    if_not_exists: Optional[Literal["create", "reject"]] = None
    on_disconnect: Optional[Literal["cancel", "continue"]] = None
    on_completion: Optional[Literal["delete", "keep"]] = None
    webhook: Optional[str] = None
    after_seconds: Optional[float] = None
    durability: Optional[Literal["sync", "async", "exit"]] = None

    def modes(self, default: str = "values") -> list[str]:
        if self.stream_mode is None:
            return [default]
        return [self.stream_mode] if isinstance(self.stream_mode, str) else list(dict.fromkeys(self.stream_mode)) or [default]


class ThreadCreate(_Body):
    thread_id: Optional[str] = Field(default=None, min_length=1, max_length=255)
    metadata: Optional[dict] = None
    if_exists: Optional[Literal["raise", "do_nothing"]] = None
    graph_id: Optional[str] = None


class ThreadPatch(_Body):
    metadata: dict = Field(default_factory=dict)


class ThreadSearch(_Body):
    metadata: Optional[dict] = None
    values: Optional[dict] = None
    ids: Optional[list[str]] = None
    status: Optional[Literal["idle", "busy", "interrupted", "error"]] = None
    limit: int = Field(default=10, ge=1, le=10_000)
    offset: int = Field(default=0, ge=0)
    sort_by: Optional[Literal["thread_id", "status", "created_at", "updated_at"]] = None
    sort_order: Optional[Literal["asc", "desc"]] = None


class ThreadCount(_Body):
    metadata: Optional[dict] = None
    values: Optional[dict] = None
    status: Optional[Literal["idle", "busy", "interrupted", "error"]] = None


class StateUpdate(_Body):
    values: Any = None
    as_node: Optional[str] = None
    checkpoint: Optional[CheckpointRef] = None
    checkpoint_id: Optional[str] = None


class StateAtCheckpoint(_Body):
    checkpoint: CheckpointRef
    subgraphs: bool = False


class HistoryRequest(_Body):
    limit: int = Field(default=10, ge=1, le=10_000)
    before: Union[str, CheckpointRef, None] = None
    metadata: Optional[dict] = None
    checkpoint: Optional[CheckpointRef] = None


class AssistantSearch(_Body):
    metadata: Optional[dict] = None
    graph_id: Optional[str] = None
    name: Optional[str] = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class AssistantCount(_Body):
    metadata: Optional[dict] = None
    graph_id: Optional[str] = None


class CancelMany(_Body):
    thread_id: Optional[str] = None
    run_ids: Optional[list[str]] = None
    status: Optional[Literal["pending", "running", "all"]] = None
