"""A thread's lease: the time it last showed progress (``updated_at``).

The sweeper takes a busy thread untouched for ``stall_seconds`` for one whose
step was lost. A step touches its thread's lease in the transaction that
stores its checkpoint (:func:`lease_precondition`), and that same statement
answers whether the run may still go on — so storing a step costs no extra
round trip for either. While a long node runs, one heartbeat thread per
process touches the leases of the threads whose nodes are running
(:data:`HEARTBEATS`); a node that ends before the first beat costs a dict
insert and delete, no thread start.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

import sqlalchemy as sa

from lgdist.distributed.runs import runs_table, threads_table

log = logging.getLogger("lgdist.leases")


class LeaseCheck:
    """A ``put`` precondition: touch the thread's lease and answer whether
    the run is still running, in one statement (``UPDATE … RETURNING``). A
    cancelled (or otherwise ended) run stores no further step, as a chord's
    ``finish_step`` would not. ``seen`` receives the run's status.

    Called with a connection it runs its statement; a store that writes
    its rows in one statement on Postgres takes :attr:`gate` (the same
    check as SQL) into that statement instead, one round trip fewer."""

    def __init__(self, thread_id: str, run_id: str, seen: Optional[list] = None) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        self.seen = seen

    def __call__(self, conn: Any) -> bool:
        if conn is None:  # a store without a database (tests): nothing to check
            return True
        status = sa.select(runs_table.c.status).where(runs_table.c.run_id == self.run_id).scalar_subquery()
        statement = (
            sa.update(threads_table)
            .where(threads_table.c.thread_id == self.thread_id)
            .values(updated_at=sa.bindparam("now"))
            .returning(status)
        )
        return self.answer(conn.execute(statement, {"now": time.time()}).scalar())

    @property
    def gate(self) -> tuple[str, dict]:
        """The check as SQL for a data-modifying ``WITH``: one row
        ``(ok, answer)``, none if the thread is gone; and its parameters."""
        sql = (
            f"UPDATE {threads_table.name} SET updated_at = %(g_now)s WHERE thread_id = %(g_thread)s "
            f"RETURNING (SELECT status FROM {runs_table.name} WHERE run_id = %(g_run)s) = 'running' AS ok, "
            f"(SELECT status FROM {runs_table.name} WHERE run_id = %(g_run)s) AS answer"
        )
        return sql, {"g_now": time.time(), "g_thread": self.thread_id, "g_run": self.run_id}

    def answer(self, status: Optional[str]) -> bool:
        """Record what the check found; whether the run may go on."""
        if self.seen is not None and status is not None:
            self.seen.append(status)
        return status == "running"


def lease_precondition(thread_id: str, run_id: str, seen: Optional[list] = None) -> LeaseCheck:
    """The precondition of a step's store: see :class:`LeaseCheck`."""
    return LeaseCheck(thread_id, run_id, seen)


class Heartbeats:
    """One daemon thread that keeps the leases of running nodes fresh."""

    def __init__(self) -> None:
        self._held: dict[int, tuple[Any, str, float]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._next = 0

    @contextmanager
    def hold(self, backend: Any, thread_id: str) -> Iterator[None]:
        """Keep ``thread_id``'s lease fresh while the block runs."""
        interval = max(0.5, backend.settings.stall_seconds / 3)
        with self._lock:
            self._next += 1
            token = self._next
            self._held[token] = (backend, thread_id, time.monotonic() + interval)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._beat, name="lgdist-heartbeats", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(token, None)

    def _beat(self) -> None:
        while True:
            self._wake.wait(0.25)
            now = time.monotonic()
            with self._lock:
                due = [(k, v) for k, v in self._held.items() if v[2] <= now]
            for token, (backend, thread_id, _) in due:
                try:
                    backend.runs.touch_thread(thread_id)
                except Exception as exc:  # noqa: BLE001 - a missed beat is retried; the node goes on
                    log.warning("heartbeat of thread %s: %s", thread_id, exc)
                interval = max(0.5, backend.settings.stall_seconds / 3)
                with self._lock:
                    if token in self._held:
                        self._held[token] = (backend, thread_id, time.monotonic() + interval)


HEARTBEATS = Heartbeats()
