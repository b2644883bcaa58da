"""A real cluster for the distributed suite: two ``lgdist worker`` processes
on the machine's Redis and Postgres, on a Redis database, queues and a
Postgres schema of this suite's own (``tests/cluster_machinery.py``, which
the fault and server suites use too). When a test fails, the part of each
worker's log written during that test is attached to the report.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from cluster_machinery import Cluster, Machinery

MACHINERY = Machinery()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two prefork workers (``-c 1`` each, separate processes) serving this
    session's queues; terminated when the session ends."""
    yield from MACHINERY.cluster(tmp_path_factory)


@pytest.fixture
def client(cluster: Cluster) -> Any:
    return cluster.client


@pytest.fixture
def celery_app(cluster: Cluster) -> Any:
    """A plain Celery app configured like any producer would be: sending to
    it is a bare ``send_task``."""
    return cluster.app


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    MACHINERY.record_log_offsets(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    MACHINERY.attach_worker_logs(item, outcome.get_result())
