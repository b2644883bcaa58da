"""What submitting a run costs the server, counted rather than timed: the
database transactions ``create_run`` opens (each is a round trip or more,
and a pooled connection held) for a stateless run and for a run on a
thread. The runs then finish on the real workers."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from lgdist.server.schemas import RunCreate
from lgdist.server.service import ApiService

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


@pytest.fixture
def service(cluster: Any) -> Iterator[ApiService]:
    from lgdist.client import Client

    service = ApiService(cluster.client.settings, Client(cluster.client.settings))
    service.runs.setup()
    service.backend.saver.setup()
    try:
        yield service
    finally:
        service.backend.saver.engine.dispose()


class Transactions:
    """Counts the transactions begun on an engine, and its statements."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.count = 0
        self.statements: list[str] = []

    def _begin(self, conn: Any) -> None:
        self.count += 1

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement.split()[0].upper())

    def __enter__(self) -> "Transactions":
        sa.event.listen(self.engine, "begin", self._begin)
        sa.event.listen(self.engine, "before_cursor_execute", self._statement)
        return self

    def __exit__(self, *exc: Any) -> None:
        sa.event.remove(self.engine, "begin", self._begin)
        sa.event.remove(self.engine, "before_cursor_execute", self._statement)


def test_a_stateless_run_is_submitted_in_one_transaction_and_its_thread_goes_with_its_end(cluster, service):
    with Transactions(service.backend.saver.engine) as tx:
        run = service.create_run(None, RunCreate(assistant_id="counter", input={"n": 3}))
    assert tx.count == 1
    # The thread, created busy with the run, and the run, in one statement
    # (autocommit): nothing to read.
    assert tx.statements == ["WITH"]
    # The worker's transaction that ends the run deletes its thread, its
    # run record and its checkpoints (on_completion="delete"): the server
    # has nothing left to clean up.
    cluster.wait_for(lambda: service.runs.get_run(run.run_id) is None, what="the stateless run's thread to go")
    assert service.runs.get_thread(run.thread_id) is None
    assert service.backend.saver.get_tuple({"configurable": {"thread_id": run.thread_id, "checkpoint_ns": ""}}) is None
    end = [chunk for mode, chunk in service.backend.bus.read(run.run_id, timeout=10) if mode == "__end__"]
    assert end == [{"status": "success", "error": None, "thread_deleted": True}]


def test_a_stateless_run_kept_on_completion_keeps_its_thread(cluster, service):
    run = service.create_run(None, RunCreate(assistant_id="counter", input={"n": 3}, on_completion="keep"))
    assert cluster.wait_run(run.run_id)["status"] == "success"
    assert service.store.get(run.thread_id) is not None
    assert service.backend.saver.get_tuple({"configurable": {"thread_id": run.thread_id, "checkpoint_ns": ""}}) is not None


def test_a_run_on_a_labelled_thread_costs_three_transactions(cluster, service):
    tid = cluster.thread_id("rt")
    service.store.create(tid, {})
    with Transactions(service.backend.saver.engine) as tx:
        first = service.create_run(tid, RunCreate(assistant_id="counter", input={"n": 3}))
    # The thread's read, its graph labels (once), its latest checkpoint, the run.
    assert tx.count == 4
    assert cluster.wait_run(first.run_id)["status"] == "success"
    with Transactions(service.backend.saver.engine) as tx:
        second = service.create_run(tid, RunCreate(assistant_id="counter", input={"n": 3}))
    assert tx.count == 3
    assert cluster.wait_run(second.run_id)["status"] == "success"
    assert service.store.get(tid)["metadata"] == {"graph_id": "counter", "assistant_id": service.assistant("counter")["assistant_id"]}
