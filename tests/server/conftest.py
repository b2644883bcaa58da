"""A real ``lgdist serve`` process in front of the distributed suite's
cluster (two ``lgdist worker`` processes on Redis + Postgres), driven by
the real ``langgraph-sdk`` clients and langgraph's ``RemoteGraph``.

The cluster's ``cluster`` fixture and its log-attaching hooks are
re-registered here from the distributed suite's machinery (see
``serverlib.py``); the server's log is added to failure reports.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from serverlib import Server, dist, start_server

cluster = dist.cluster
pytest_runtest_setup = dist.pytest_runtest_setup
pytest_runtest_makereport = dist.pytest_runtest_makereport


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
