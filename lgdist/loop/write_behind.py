"""Checkpoint writes behind the steps: LangGraph's ``durability="async"``.

The loop encodes each checkpoint and each task's writes on its own thread
(see ``BaseCheckpointSaver.prepare_put``) and hands the store calls to a
:class:`WriteBehind`, which runs them in order on a background thread while
the next steps run. Calls queued while an earlier one was being stored are
stored together when they can be (a SQL store makes them one statement or
transaction), so a quick run makes one round trip per few steps instead of
one per step and per task. At most ``MAX_CHECKPOINTS_BEHIND`` checkpoints
wait: a crash costs at most that many steps, and memory stays bounded. The
run waits for every write before it returns (:meth:`WriteBehind.wait`), so
``get_state`` after ``invoke`` sees it all.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
from collections import deque
from typing import Callable, Optional

__all__ = ["WriteBehind"]

MAX_CHECKPOINTS_BEHIND = 32
_POOL_SIZE = 8
_pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
_pool_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    # A pool of its own, apart from the nodes' pool: a write never waits
    # behind a node, and a node that runs a graph never waits for a write.
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=_POOL_SIZE, thread_name_prefix="lgdist-writes")
    return _pool


class WriteBehind:
    """One run's store writes, run in submission order off the caller's
    thread. A failed write stops the ones after it; the error is raised by
    the next :meth:`submit` or by :meth:`wait`.

    A write with a ``batch_key`` (its store) and a ``combine(later)``
    method may be stored together with the writes of the same key queued
    right after it."""

    def __init__(self) -> None:
        self._queue: deque[tuple[Callable[[], None], bool]] = deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running = False
        self._checkpoints_queued = 0
        self._error: Optional[BaseException] = None

    def submit(self, write: Optional[Callable[[], None]], *, checkpoint: bool = False) -> None:
        """Queue ``write``; a ``checkpoint`` write first waits while
        ``MAX_CHECKPOINTS_BEHIND`` checkpoints are queued. ``None`` (a store
        that stored at once, see ``prepare_put``) queues nothing."""
        if write is None:
            return
        with self._lock:
            if checkpoint:
                while self._checkpoints_queued >= MAX_CHECKPOINTS_BEHIND and self._error is None:
                    self._idle.wait()
            self._raise_error()
            self._queue.append((write, checkpoint))
            self._checkpoints_queued += checkpoint
            if self._running:
                return
            self._running = True
        _executor().submit(self._drain)

    def wait(self) -> None:
        """Block until every queued write ran; raise the first failure."""
        with self._lock:
            while self._running:
                self._idle.wait()
            self._raise_error()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue or self._error is not None:
                    self._queue.clear()
                    self._checkpoints_queued = 0
                    self._running = False
                    self._idle.notify_all()
                    return
                batch = _batch(self._queue)
            try:
                if len(batch) == 1:
                    batch[0][0]()
                else:
                    batch[0][0].combine([write for write, _ in batch[1:]])()  # type: ignore[attr-defined]
            except BaseException as exc:  # noqa: BLE001 - handed to the run's thread
                with self._lock:
                    self._error = exc
            with self._lock:
                for _ in batch:
                    self._queue.popleft()
                self._checkpoints_queued -= sum(checkpoint for _, checkpoint in batch)
                self._idle.notify_all()


def _batch(queue: deque) -> list[tuple[Callable[[], None], bool]]:
    """The writes at the head of ``queue`` that can be stored as one."""
    first = queue[0]
    key = getattr(first[0], "batch_key", None)
    if key is None:
        return [first]
    batch = [first]
    for item in itertools.islice(queue, 1, None):
        if getattr(item[0], "batch_key", None) is not key:
            break
        batch.append(item)
    return batch
