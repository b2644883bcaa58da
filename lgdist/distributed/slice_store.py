"""Durability "async" for a worker's inline slice of one-task steps.

A worker that runs several one-task steps of a thread in one task (see
``single_step``) stores each step's checkpoint before it runs the next one
under ``durability="sync"``: a transaction per step. Under ``"async"``
(LangGraph's default, and the API's) the slice's checkpoints are encoded as
each step finishes and kept, with the steps' stream events, until the slice
ends — before the run ends or stops at an interrupt or an error, before a
step is sent to the queue, before a step leaves this worker in any way —
and then stored in one transaction (which also touches the thread's lease
and checks the run still runs) and streamed in one publish.

Exactly once, as per step: the first checkpoint of the slice is stored
under ``step:<parent>``, the parent being the thread's last stored
checkpoint, and the slice's others under their own parents' keys, all or
none. A worker that dies mid-slice stored none of the slice and streamed
none of it: the redelivered message runs the slice again from the last
stored checkpoint (the slice's nodes run again, as LangGraph's async
durability allows), and a second delivery that finds the first key stored
stores nothing.

A slow node does not hold the slice's earlier steps back: when a node is
still running ``inline_ms`` after it started with steps kept, a background
thread stores them (LangGraph's async durability stores each checkpoint on
a background thread while the next step runs), so the thread's state is
readable while a long node runs.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from lgdist.checkpoint.base import PreconditionFailed
from lgdist.distributed import lifecycle
from lgdist.distributed.backend import Backend
from lgdist.distributed.runs import Run

# The durability a run gets when its submitter did not say (runs submitted
# by an older lgdist): a checkpoint stored per step, as that lgdist did.
# Every sender now says, by default LangGraph's "async".
DEFAULT_DURABILITY = "sync"


def durability(run: Run) -> str:
    """The run's durability: "sync", "async" or "exit"."""
    return run.options.get("durability") or DEFAULT_DURABILITY


class SliceStore:
    """Stands in for the loop's saver while a slice runs. With ``deferring``
    on, a keyed ``put`` (a step's checkpoint and the writes of its task) and
    ``put_writes`` (an interrupted task's writes) are encoded now and kept
    for :meth:`settle`; with it off, they are stored at once. Everything else
    is the saver's."""

    def __init__(self, backend: Backend, run: Run, saver: Any, *, new_thread: bool = False) -> None:
        self._backend = backend
        self._run = run
        self._saver = saver
        self.deferring = True
        # The run's thread was created with it (a stateless run that just
        # began): it has no checkpoint to read.
        self._new_thread = new_thread
        self._notes: dict = {}
        self._planned: list = []
        self._writes: list[Callable[[], None]] = []
        self._events: list = []
        self._last_step: Optional[int] = None
        # settle() may run on the background thread while a node runs.
        self._lock = threading.Lock()
        self._refused: Optional[str] = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._saver, name)

    # -- the saver calls the loop makes ---------------------------------------------------
    def get_tuple(self, config: Any) -> Any:
        if self._new_thread and not (config.get("configurable") or {}).get("checkpoint_id"):
            self._new_thread = False
            return None
        return self._saver.get_tuple(config)

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any, **kwargs: Any) -> Any:
        key = kwargs.get("idempotency_key")
        if not self.deferring or key is None:
            return self._saver.put(config, checkpoint, metadata, new_versions, **kwargs)
        kwargs.pop("precondition", None)  # settle() checks the run, once for the slice
        planned = self._saver.plan_put(config, checkpoint, metadata, new_versions, **kwargs)
        with self._lock:
            self._planned.append(planned)
            self._last_step = metadata.get("step")
        return {"configurable": {"thread_id": planned.thread_id, "checkpoint_ns": planned.ns, "checkpoint_id": checkpoint["id"]}}

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        if not self.deferring:
            return self._saver.put_writes(config, writes, task_id, task_path)
        prepared = self._saver.prepare_put_writes(config, writes, task_id, task_path)
        with self._lock:
            self._writes.append(prepared)

    # -- the slice ----------------------------------------------------------------------------
    def defer_events(self, events: list) -> None:
        """Stream ``events`` after the checkpoints kept so far are stored."""
        with self._lock:
            self._events.extend(events)

    def note(self, **values: Any) -> None:
        """Record facts about the run (``lifecycle.note``) with the slice."""
        with self._lock:
            self._notes.update(values)

    @property
    def keeps(self) -> bool:
        """Whether steps wait to be stored."""
        return bool(self._planned or self._writes or self._notes)

    @contextmanager
    def running_node(self, delay: float) -> Iterator[None]:
        """A node runs: should it still run ``delay`` seconds from now, the
        steps kept so far are stored meanwhile (see :data:`LATE_STORES`)."""
        if not self.keeps:
            yield
            return
        LATE_STORES.arm(self, delay)
        try:
            yield
        finally:
            LATE_STORES.disarm(self)

    def settle(self, also: Optional[Callable[[Any], Any]] = None, *, discard: bool = False) -> Optional[str]:
        """Store what the slice kept (one transaction) and stream its events
        (one publish, once per slice). None when stored (or nothing was
        kept); else what happened instead — the run was cancelled (then it
        is settled here, as a finished step would settle it) or no longer
        runs, or another delivery stored the slice's first step (then the
        slice's later steps are not stored either).

        ``also`` runs in the same transaction, after the rows (the run's
        end); ``discard``: the same transaction deletes the thread (a
        stateless run's end), so its rows are not written at all."""
        with self._lock:
            if self._refused is None:
                self._refused = self._settle(also, discard)
            return self._refused

    def _settle(self, extra: Optional[Callable[[Any], Any]], discard: bool) -> Optional[str]:
        from lgdist.distributed.run_end import publish_events, settle_cancelled
        from lgdist.distributed.crashpoints import crash_point
        from lgdist.distributed.leases import lease_precondition

        planned, self._planned = self._planned, []
        writes, self._writes = self._writes, []
        events, self._events = self._events, []
        notes, self._notes = self._notes, {}
        backend, run = self._backend, self._run
        if not planned and not writes and not notes and extra is None:
            publish_events(backend, run.run_id, events)
            return None
        also = [lambda conn: lifecycle.note_in(conn, run.run_id, **notes)] if notes else []
        if extra is not None:
            also.append(extra)
        if discard:
            kept_planned, kept_writes = planned, writes
            planned, writes, also = [], [], also[-1:]
        once = planned[0].row["idempotency_key"] if planned else None
        # Each step's own key too: a recovery streams a stored step under it
        # (see ``restream``), and must not stream one this batch carried.
        marks = [p.row["idempotency_key"] for p in planned[1:]]
        seen: list = []
        try:
            stored = self._saver.put_planned(
                planned, precondition=lease_precondition(run.thread_id, run.run_id, seen), writes=writes, also=also
            )
        except PreconditionFailed:
            current = backend.runs.get_run(run.run_id)
            if current is not None and current.status == "cancelled":
                settle_cancelled(backend, current)
                return "cancelled"
            return f"ignored: run is {seen[0] if seen else 'gone'}"
        except BaseException:
            # Not stored (a lost connection): kept for the next settle().
            if discard:
                planned, writes = kept_planned, kept_writes
            self._planned[:0], self._writes[:0], self._events[:0] = planned, writes, events
            self._notes = {**notes, **self._notes}
            raise
        if not stored:
            publish_events(backend, run.run_id, events, once=once, marks=marks)
            return "stored before"
        if self._last_step is not None:
            crash_point("slice.stored", run.thread_id, self._last_step)
        publish_events(backend, run.run_id, events, once=once, marks=marks)
        return None


class _LateStores:
    """One daemon thread per process that stores a slice's kept steps when
    a node of the slice runs long (armed per node: a dict insert, no thread
    start; the thread starts with the first long node)."""

    def __init__(self) -> None:
        self._armed: dict[int, tuple[float, SliceStore]] = {}
        self._wake = threading.Condition()
        self._thread: Optional[threading.Thread] = None

    def arm(self, store: SliceStore, delay: float) -> None:
        with self._wake:
            self._armed[id(store)] = (time.monotonic() + delay, store)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lgdist-late-stores", daemon=True)
                self._thread.start()
            self._wake.notify()

    def disarm(self, store: SliceStore) -> None:
        with self._wake:
            self._armed.pop(id(store), None)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                due = [store for at, store in self._armed.values() if at <= now]
                for store in due:
                    self._armed.pop(id(store), None)
                if not due:
                    soonest = min((at for at, _ in self._armed.values()), default=None)
                    self._wake.wait(None if soonest is None else soonest - now)
                    continue
            for store in due:
                try:
                    store.settle()
                except Exception:  # noqa: BLE001 - the slice's own settle() tries again and raises
                    pass


LATE_STORES = _LateStores()
