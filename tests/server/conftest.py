"""A real ``lgdist serve`` process in front of the distributed suite's
cluster (two ``lgdist worker`` processes on Redis + Postgres), driven by
the real ``langgraph-sdk`` clients and langgraph's ``RemoteGraph``.

The ``cluster`` fixture and its log-attaching hooks come from the cluster
machinery the distributed suite uses too (``tests/cluster_machinery.py``),
with this suite's own session (``serverlib.dist``); the server's log is
added to failure reports.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from cluster_machinery import Cluster, Server, start_server
from serverlib import dist


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from dist.cluster(tmp_path_factory)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    dist.record_log_offsets(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    dist.attach_worker_logs(item, outcome.get_result())


@pytest.fixture(scope="session")
def server(cluster: Any) -> Iterator[Server]:
    srv = start_server(cluster)
    _SERVERS.append(srv.process)
    try:
        yield srv
    finally:
        srv.process.stop()
        _SERVERS.remove(srv.process)


_SERVERS: list = []


@pytest.fixture
def sdk(server: Server) -> Any:
    from langgraph_sdk import get_sync_client

    return get_sync_client(url=server.url)


@pytest.fixture
def asdk(server: Server) -> Any:
    from langgraph_sdk import get_client

    return get_client(url=server.url)


@pytest.hookimpl(tryfirst=True)
def pytest_exception_interact(node: Any, call: Any, report: pytest.TestReport) -> None:
    for process in _SERVERS:
        report.sections.append(("lgdist serve log (tail)", process.log_since(max(0, process.log_size() - 8000))))
