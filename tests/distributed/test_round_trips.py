"""The hot path's round-trip budget, counted (not timed): see the budget in
``lgdist/distributed/nodes.py``. The Celery driver runs in-process
(``bench/round_trips.py``): each step message the coordinator would send is
handed to ``nodes.run_node``, the function a worker's task calls."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from bench.round_trips import drive, in_process_backend
from tests.conftest import POSTGRES_URL, REDIS_URL

pytestmark = [pytest.mark.integration]


@pytest.fixture
def backend() -> Iterator[Any]:
    with in_process_backend(POSTGRES_URL, REDIS_URL) as backend:
        yield backend


def test_a_chain_superstep_costs_two_transactions_and_at_most_six_statements(backend):
    run_id, counters = drive(backend, "chain", {"n": 0})
    assert backend.runs.get_run(run_id).status == "success"
    steps = counters[3:-1]  # warm steps (the last one also ends the run)
    assert len(steps) >= 10
    for counter in steps:
        assert counter.transactions <= 2, counter.statements
        assert len(counter.statements) <= 6, counter.statements
        assert counter.checkouts <= 2
    # The read: one statement for the run and the checkpoint row (and, as
    # a CTE, the thread's lease); no blob
    # read (small values live in the row; others this process decoded
    # already); no writes read. The write: lease + run check, checkpoint,
    # the task's writes (no blob: the chain's state is one small number).
    assert steps[0].statements == ["WITH", "UPDATE", "INSERT", "INSERT"], steps[0].statements


def test_a_worker_new_to_the_thread_needs_no_blob_row_for_small_values(backend):
    run_id, counters = drive(backend, "chain", {"n": 0}, cold=True)
    assert backend.runs.get_run(run_id).status == "success"
    for counter in counters[3:-1]:
        assert counter.statements == ["WITH", "UPDATE", "INSERT", "INSERT"], counter.statements
        assert counter.transactions <= 2
