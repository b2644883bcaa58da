"""Values on the wire: what the LangGraph Server API sends as JSON.

Messages go out as their ``model_dump()`` (``{"type": "human", "content":
…}``), interrupts as ``{"value", "id"}``, pydantic models and dataclasses as
dicts, tuples and sets as lists, datetimes as ISO text — the shapes
``langgraph-sdk`` clients read from LangGraph's own server.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import uuid
from typing import Any, Optional

from lgdist.types import Interrupt, StateSnapshot


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, Interrupt):
        return {"value": jsonable(value.value), "id": value.id}
    if hasattr(value, "model_dump") and callable(value.model_dump):
        try:
            return jsonable(value.model_dump())
        except TypeError:
            pass
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "_asdict"):
        return jsonable(value._asdict())
    return str(value)


def iso(ts: Optional[float]) -> Optional[str]:
    """A unix time as the API's ISO-8601 text (UTC)."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).isoformat()


def checkpoint_ref(config: Optional[dict]) -> Optional[dict]:
    """A snapshot's config as the API's checkpoint object."""
    if not config:
        return None
    configurable = config.get("configurable") or {}
    ref = {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
    }
    if configurable.get("checkpoint_map"):
        ref["checkpoint_map"] = configurable["checkpoint_map"]
    return ref


def thread_state(snapshot: StateSnapshot) -> dict:
    """A ``StateSnapshot`` as the API's ``ThreadState``."""
    tasks = []
    for task in snapshot.tasks:
        state = task.state
        nested = thread_state(state) if isinstance(state, StateSnapshot) else None
        tasks.append(
            {
                "id": task.id,
                "name": task.name,
                "path": jsonable(list(task.path)),
                "error": str(task.error) if task.error is not None else None,
                "interrupts": jsonable(list(task.interrupts)),
                "checkpoint": checkpoint_ref(state) if isinstance(state, dict) else None,
                "state": nested,
                "result": jsonable(task.result),
            }
        )
    checkpoint = checkpoint_ref(snapshot.config)
    parent = checkpoint_ref(snapshot.parent_config)
    return {
        "values": jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": tasks,
        "metadata": jsonable(snapshot.metadata) if snapshot.metadata is not None else {},
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": jsonable(list(snapshot.interrupts)),
        "checkpoint_id": (checkpoint or {}).get("checkpoint_id"),
        "parent_checkpoint_id": (parent or {}).get("checkpoint_id"),
    }
