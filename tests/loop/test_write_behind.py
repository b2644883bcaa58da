"""WriteBehind: a run's store writes in order off the run's thread, queued
ones of one store combined, failures handed back to the run."""

from __future__ import annotations

import threading

import pytest

from lgdist.loop import write_behind
from lgdist.loop.write_behind import WriteBehind


class Rows:
    """A prepared write of a fake store: records what it stored, and how."""

    def __init__(self, store: list, rows: list, gate: threading.Event | None = None) -> None:
        self.batch_key: list | None = store
        self.store = store
        self.rows = rows
        self.gate = gate
        self.started = threading.Event()

    def __call__(self) -> None:
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        self.store.append(list(self.rows))

    def combine(self, later: list) -> "Rows":
        return Rows(self.batch_key, self.rows + [r for w in later for r in w.rows])


def blocked_write(stored: list, rows: list) -> tuple[Rows, threading.Event]:
    """A write that blocks the queue until its gate opens, once it runs."""
    gate = threading.Event()
    write = Rows(stored, rows, gate)
    write.batch_key = None  # never combined
    return write, gate


def test_writes_run_in_order_and_queued_ones_of_one_store_combine():
    stored: list = []
    first, gate = blocked_write(stored, [1])
    behind = WriteBehind()
    behind.submit(first, checkpoint=True)
    assert first.started.wait(10)
    for n in (2, 3, 4):
        behind.submit(Rows(stored, [n]), checkpoint=n == 3)
    gate.set()
    behind.wait()
    assert stored == [[1], [2, 3, 4]]


def test_writes_without_a_batch_key_run_one_by_one_in_order():
    stored: list = []
    behind = WriteBehind()
    for n in range(20):
        behind.submit(lambda n=n: stored.append(n))
    behind.wait()
    assert stored == list(range(20))


def test_a_failed_write_stops_the_later_ones_and_wait_raises_it():
    stored: list = []
    gate = threading.Event()
    behind = WriteBehind()

    def fail() -> None:
        assert gate.wait(10)
        raise RuntimeError("disk full")

    behind.submit(fail)
    behind.submit(lambda: stored.append("after"))
    gate.set()
    with pytest.raises(RuntimeError, match="disk full"):
        behind.wait()
    assert stored == []


def test_a_failed_write_is_raised_by_the_next_submit():
    behind = WriteBehind()
    behind.submit(lambda: 1 / 0)
    with behind._lock:  # wait for the failure without consuming it
        while behind._running:
            behind._idle.wait()
    with pytest.raises(ZeroDivisionError):
        behind.submit(lambda: None)


def test_a_checkpoint_waits_while_too_many_checkpoints_are_behind(monkeypatch):
    monkeypatch.setattr(write_behind, "MAX_CHECKPOINTS_BEHIND", 2)
    stored: list = []
    first, gate = blocked_write(stored, [1])
    behind = WriteBehind()
    behind.submit(first, checkpoint=True)
    behind.submit(Rows(stored, [2]), checkpoint=True)
    third = threading.Thread(target=behind.submit, args=(Rows(stored, [3]),), kwargs={"checkpoint": True})
    third.start()
    third.join(0.2)
    assert third.is_alive()  # two checkpoints queued: the third waits
    gate.set()
    third.join(10)
    assert not third.is_alive()
    behind.wait()
    assert [r for batch in stored for r in batch] == [1, 2, 3]
