"""An in-process checkpoint store, for tests, notebooks and the local runtime.

It keeps the same layout and rules as the SQL store (one blob per channel
version, idempotent pending writes, idempotency keys) and stores *serialized*
bytes, so a value that cannot be serialized fails here exactly as it would in
SQLite or Postgres, and mutating a returned value never changes history.
A list that only grew since the parent is kept as a delta, as in the SQL store
(see :mod:`lgdist.checkpoint.delta`).
"""

from __future__ import annotations

import threading
from typing import Any, Iterator, Optional, Sequence

from langchain_core.runnables import RunnableConfig

from lgdist import serde
from lgdist.checkpoint import delta
from lgdist.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    Checkpoint,
    Precondition,
    PreconditionFailed,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_ns,
    get_thread_id,
)

__all__ = ["InMemorySaver", "MemorySaver"]


class _StoredCheckpoint:
    __slots__ = ("checkpoint", "versions", "seen", "metadata", "parent_id", "links")

    def __init__(self, checkpoint: Checkpoint, metadata: bytes, parent_id: Optional[str], links: dict[str, delta.Link]) -> None:
        # Serialized without values and versions bookkeeping, which are kept
        # as private copies: encoding every channel's version and every
        # node's seen versions as JSON each step cost O(nodes) in encoding.
        body = {k: (None if k in _BOOKKEEPING else v) for k, v in checkpoint.items() if k != "channel_values"}
        self.checkpoint = serde.dumps_checkpoint(body)
        self.versions = dict(checkpoint.get("channel_versions") or {})
        self.seen = {node: dict(s) for node, s in (checkpoint.get("versions_seen") or {}).items()}
        self.metadata = metadata
        self.parent_id = parent_id
        self.links = links  # delta links of its list-valued channels

    def load(self) -> dict:
        """The stored checkpoint without values, the caller's own."""
        checkpoint = serde.loads(self.checkpoint)
        checkpoint["channel_versions"] = dict(self.versions)
        checkpoint["versions_seen"] = {node: dict(s) for node, s in self.seen.items()}
        return checkpoint


_BOOKKEEPING = ("channel_versions", "versions_seen")


class InMemorySaver(BaseCheckpointSaver):
    """Checkpoints kept in this process's memory; thread-safe, lost on exit."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        # thread_id -> checkpoint_ns -> checkpoint_id -> stored checkpoint
        self._checkpoints: dict[str, dict[str, dict[str, _StoredCheckpoint]]] = {}
        # (thread_id, checkpoint_ns, channel, version) -> (type, blob, base version of a delta)
        self._blobs: dict[tuple[str, str, str, str], tuple[str, bytes, Optional[str]]] = {}
        # (thread_id, checkpoint_ns, checkpoint_id) -> (task_id, idx) -> (channel, type, blob, task_path)
        self._writes: dict[tuple[str, str, str], dict[tuple[str, int], tuple[str, str, bytes, str]]] = {}
        # (thread_id, checkpoint_ns, idempotency_key) -> checkpoint_id
        self._idempotency_keys: dict[tuple[str, str, str], str] = {}

    # ------------------------------------------------------------- reads
    def get_tuple(self, config: RunnableConfig) -> Optional[CheckpointTuple]:
        thread_id, ns = get_thread_id(config), get_checkpoint_ns(config)
        checkpoint_id = get_checkpoint_id(config)
        with self._lock:
            by_id = self._checkpoints.get(thread_id, {}).get(ns, {})
            if checkpoint_id is None:
                if not by_id:
                    return None
                checkpoint_id = max(by_id)  # ids are time-ordered strings
            stored = by_id.get(checkpoint_id)
            if stored is None:
                return None
            return self._load_tuple(thread_id, ns, checkpoint_id, stored)

    def list(
        self,
        config: Optional[RunnableConfig],
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[RunnableConfig] = None,
        limit: Optional[int] = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first; ``config=None`` lists every thread."""
        configurable = (config or {}).get("configurable") or {}
        before_id = get_checkpoint_id(before) if before else None
        with self._lock:
            candidates = [
                (checkpoint_id, thread_id, ns, stored)
                for thread_id, namespaces in self._checkpoints.items()
                if config is None or thread_id == get_thread_id(config)
                for ns, by_id in namespaces.items()
                if "checkpoint_ns" not in configurable or ns == configurable["checkpoint_ns"]
                for checkpoint_id, stored in by_id.items()
                if configurable.get("checkpoint_id") in (None, checkpoint_id)
                and (before_id is None or checkpoint_id < before_id)
            ]
        candidates.sort(key=lambda c: c[0], reverse=True)
        yielded = 0
        for checkpoint_id, thread_id, ns, stored in candidates:
            if limit is not None and yielded >= limit:
                return
            if filter and not _matches(serde.loads(stored.metadata), filter):
                continue
            with self._lock:
                tup = self._load_tuple(thread_id, ns, checkpoint_id, stored)
            yielded += 1
            yield tup

    def _load_tuple(
        self, thread_id: str, ns: str, checkpoint_id: str, stored: _StoredCheckpoint
    ) -> CheckpointTuple:
        checkpoint = stored.load()
        values = {}
        for channel, version in checkpoint.get("channel_versions", {}).items():
            pieces = []  # the row, then its bases back to the chain's root
            found = self._blobs.get((thread_id, ns, channel, str(version)))
            while found is not None:
                pieces.append(found)
                base = found[2]
                found = self._blobs.get((thread_id, ns, channel, base)) if base is not None else None
            if not pieces or pieces[-1][2] is not None:
                continue  # no row, or a lost base: the channel is left out
            if len(pieces) > 1:
                values[channel] = [
                    item for type_, blob, _ in reversed(pieces) for item in serde.deserialize_value(type_, blob)
                ]
            elif pieces[0][0] != delta.EMPTY:
                values[channel] = serde.deserialize_value(pieces[0][0], pieces[0][1])
        checkpoint["channel_values"] = values
        writes = self._writes.get((thread_id, ns, checkpoint_id), {})
        pending = [
            (task_id, channel, serde.deserialize_value(type_, blob))
            for (task_id, _idx), (channel, type_, blob, _path) in sorted(writes.items())
        ]
        parent = _config(thread_id, ns, stored.parent_id) if stored.parent_id else None
        return CheckpointTuple(
            config=_config(thread_id, ns, checkpoint_id),
            checkpoint=checkpoint,
            metadata=serde.loads(stored.metadata),
            parent_config=parent,
            pending_writes=pending,
        )

    # ------------------------------------------------------------ writes
    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: dict[str, Any],
        new_versions: dict[str, str],
        *,
        idempotency_key: Optional[str] = None,
        previous: Optional[Checkpoint] = None,
        precondition: Optional[Precondition] = None,
        parent_writes: Sequence[tuple[str, Sequence[tuple[str, Any]]]] = (),
    ) -> Optional[RunnableConfig]:
        thread_id, ns = get_thread_id(config), get_checkpoint_ns(config)
        parent_id = get_checkpoint_id(config)
        # A delta needs the parent's links and values (see SQLCheckpointSaver.put).
        parent_links: dict[str, delta.Link] = {}
        previous_values: dict[str, Any] = {}
        if previous is not None and parent_id is not None and previous.get("id") == parent_id:
            previous_values = previous.get("channel_values") or {}
            with self._lock:
                parent = self._checkpoints.get(thread_id, {}).get(ns, {}).get(parent_id)
            parent_links = parent.links if parent is not None else {}
        planned, links = delta.plan_blobs(checkpoint, new_versions, parent_links, previous_values)
        blobs = {
            (thread_id, ns, b.channel, b.version): (b.type, b.blob if b.blob is not None else b"", b.base)
            for b in planned
        }
        stored = _StoredCheckpoint(
            checkpoint,
            serde.dumps_key("metadata", metadata),
            parent_id,
            links,
        )
        with self._lock:
            if precondition is not None and not precondition(None):
                raise PreconditionFailed(checkpoint["id"])
            by_id = self._checkpoints.setdefault(thread_id, {}).setdefault(ns, {})
            if idempotency_key is not None:
                # A duplicated step (same key) is a no-op, like the SQL unique constraint.
                key = (thread_id, ns, idempotency_key)
                if key in self._idempotency_keys or checkpoint["id"] in by_id:
                    return None
                self._idempotency_keys[key] = checkpoint["id"]
            for blob_key, blob in blobs.items():
                self._blobs.setdefault(blob_key, blob)
            by_id[checkpoint["id"]] = stored
        for task_id, writes in parent_writes:
            self.put_writes(config, writes, task_id)
        return _config(thread_id, ns, checkpoint["id"])

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_id, ns = get_thread_id(config), get_checkpoint_ns(config)
        checkpoint_id = get_checkpoint_id(config)
        rows = [
            (WRITES_IDX_MAP.get(channel, idx), channel, *serde.serialize_value(value, channel))
            for idx, (channel, value) in enumerate(writes)
        ]
        with self._lock:
            stored = self._writes.setdefault((thread_id, ns, checkpoint_id), {})
            for idx, channel, type_, blob in rows:
                key = (task_id, idx)
                # Special channels (negative idx) replace; regular writes keep the
                # first run's value so a re-delivered task changes nothing.
                if idx < 0 or key not in stored:
                    stored[key] = (channel, type_, blob, task_path)

    def delete_thread(self, thread_id: str) -> None:
        thread_id = str(thread_id)
        with self._lock:
            self._checkpoints.pop(thread_id, None)
            for store in (self._blobs, self._writes, self._idempotency_keys):
                for key in [k for k in store if k[0] == thread_id]:
                    del store[key]


MemorySaver = InMemorySaver
"""Alias kept from older LangGraph releases."""


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}


def _matches(metadata: dict[str, Any], filter: dict[str, Any]) -> bool:
    return all(metadata.get(key) == value for key, value in filter.items())
