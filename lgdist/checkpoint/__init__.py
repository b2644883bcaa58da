"""Checkpoint stores: one interface (:class:`BaseCheckpointSaver`), kept in
memory, SQLite or Postgres."""

from __future__ import annotations

from typing import Any

from lgdist.checkpoint.base import BaseCheckpointSaver, Checkpoint, CheckpointTuple
from lgdist.checkpoint.memory import InMemorySaver, MemorySaver

__all__ = [
    "BaseCheckpointSaver",
    "Checkpoint",
    "CheckpointTuple",
    "InMemorySaver",
    "MemorySaver",
    "SQLCheckpointSaver",
    "SqliteSaver",
    "PostgresSaver",
]

# The SQL stores import SQLAlchemy; load them only when asked for.
_LAZY = {
    "SQLCheckpointSaver": "lgdist.checkpoint.sql",
    "SqliteSaver": "lgdist.checkpoint.sqlite",
    "PostgresSaver": "lgdist.checkpoint.postgres",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lgdist.checkpoint' has no attribute {name!r}")
