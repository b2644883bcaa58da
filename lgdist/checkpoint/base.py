"""The one interface every checkpoint store implements.

A checkpoint is a plain dict (see :class:`Checkpoint`); stores persist each
channel's value as a separate blob keyed by ``(thread_id, checkpoint_ns,
channel, version)`` and write only the channels listed in ``new_versions``, so
a step that changes one channel writes one blob, and a list that only grew
is written as the appended items (a delta). Pending writes are keyed by
``(thread_id, checkpoint_ns, checkpoint_id, task_id, idx)`` and are idempotent:
a task that runs twice (at-least-once delivery) leaves one set of writes.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, AsyncIterator, Callable, Iterator, NamedTuple, Optional, Sequence, TypedDict

from langchain_core.runnables import RunnableConfig

# Special write channels get fixed negative indexes so that a later write of the
# same kind for the same task replaces the earlier one instead of piling up.
WRITES_IDX_MAP = {"__error__": -1, "__scheduled__": -2, "__interrupt__": -3, "__resume__": -4}

# ``put(precondition=...)``: called with the store's open write transaction
# (a SQLAlchemy Connection for the SQL stores, None for the memory store)
# before anything is stored; a false answer stores nothing.
Precondition = Callable[[Any], bool]


class PreconditionFailed(Exception):
    """Internal: a put's precondition said no; nothing was stored."""


class Checkpoint(TypedDict, total=False):
    v: int
    id: str
    ts: str
    channel_values: dict[str, Any]
    channel_versions: dict[str, str]
    versions_seen: dict[str, dict[str, str]]
    updated_channels: Optional[list[str]]


class CheckpointTuple(NamedTuple):
    config: RunnableConfig
    checkpoint: Checkpoint
    metadata: dict[str, Any]
    parent_config: Optional[RunnableConfig] = None
    pending_writes: Optional[list[tuple[str, str, Any]]] = None


def get_checkpoint_id(config: RunnableConfig) -> Optional[str]:
    return (config.get("configurable") or {}).get("checkpoint_id")


def get_thread_id(config: RunnableConfig) -> str:
    thread_id = (config.get("configurable") or {}).get("thread_id")
    if thread_id is None:
        from lgdist.errors import MissingThreadIdError

        raise MissingThreadIdError()
    return str(thread_id)


def get_checkpoint_ns(config: RunnableConfig) -> str:
    return (config.get("configurable") or {}).get("checkpoint_ns", "")


class BaseCheckpointSaver:
    """Interface of a checkpoint store (memory, SQLite, Postgres).

    Method names and signatures follow LangGraph's savers so that code written
    against them keeps working. Async twins run the sync method in a thread.
    """

    def get_tuple(self, config: RunnableConfig) -> Optional[CheckpointTuple]:
        """The checkpoint named by ``config`` (its ``checkpoint_id``), or the
        thread's latest one in ``checkpoint_ns`` when no id is given."""
        raise NotImplementedError

    def get(self, config: RunnableConfig) -> Optional[Checkpoint]:
        tup = self.get_tuple(config)
        return tup.checkpoint if tup else None

    def list(
        self,
        config: Optional[RunnableConfig],
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[RunnableConfig] = None,
        limit: Optional[int] = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints of a thread (and namespace), newest first."""
        raise NotImplementedError

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
        """Store a checkpoint whose parent is ``config``'s ``checkpoint_id``.

        Returns the config naming the stored checkpoint. With an
        ``idempotency_key``, a second put with the same key for the thread
        stores nothing and returns ``None`` (a duplicated step is a no-op).
        ``previous`` is the parent checkpoint as the caller holds it (with its
        channel values): a hint that lets a store write an appended list as
        a delta instead of rewriting it (see :mod:`lgdist.checkpoint.delta`);
        stores may ignore it. It counts only when ``previous["id"]`` is the
        parent's id; its ``channel_versions`` are not read (the local loop
        bumps them in place before the put), the stored parent's are.
        ``precondition`` runs first inside the store's write transaction
        (see :data:`Precondition`); when it answers false nothing is stored
        and :class:`PreconditionFailed` is raised. ``parent_writes``
        (``(task_id, writes)`` pairs) are stored as pending writes of the
        parent checkpoint in the same transaction, as ``put_writes`` would:
        a task that finishes its step itself saves its writes and the step's
        checkpoint at once.
        """
        raise NotImplementedError

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes against the checkpoint in ``config``."""
        raise NotImplementedError

    def prepare_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: dict[str, Any],
        new_versions: dict[str, str],
        *,
        previous: Optional[Checkpoint] = None,
        parent_writes: Sequence[tuple[str, Sequence[tuple[str, Any]]]] = (),
    ) -> Optional[Callable[[], None]]:
        """:meth:`put` (without idempotency key or precondition) in two
        halves: encode now, store when the returned call runs. With
        durability="async" the local runtime runs the calls on a background
        thread, in order, while the next step runs: values are encoded before
        that step can change them, and an unstorable value fails here, naming
        its key. A store whose writes are not I/O stores at once (this
        default) and returns ``None``: nothing is left to run."""
        extra = {"parent_writes": parent_writes} if parent_writes else {}
        self.put(config, checkpoint, metadata, new_versions, previous=previous, **extra)
        return None

    def prepare_put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> Optional[Callable[[], None]]:
        """:meth:`put_writes` in two halves, as :meth:`prepare_put`."""
        self.put_writes(config, writes, task_id, task_path)
        return None

    def delete_thread(self, thread_id: str) -> None:
        raise NotImplementedError

    def get_next_version(self, current: Optional[str], channel: Any = None) -> str:
        """Versions are sortable strings; the random suffix keeps two branches
        forked from one checkpoint from reusing a (channel, version) blob key."""
        if current is None:
            n = 0
        else:
            n = int(str(current).split(".")[0])
        return f"{n + 1:032}.{random.getrandbits(64):016x}"

    # async twins -------------------------------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> Optional[CheckpointTuple]:
        return await asyncio.to_thread(self.get_tuple, config)

    async def aget(self, config: RunnableConfig) -> Optional[Checkpoint]:
        return await asyncio.to_thread(self.get, config)

    async def alist(self, config, *, filter=None, before=None, limit=None) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in items:
            yield item

    async def aput(self, config, checkpoint, metadata, new_versions, **kwargs):
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions, **kwargs)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        return await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        return await asyncio.to_thread(self.delete_thread, thread_id)
