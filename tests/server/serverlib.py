"""Shared pieces of the server suite: its own share of the cluster
machinery (``tests/cluster_machinery.py``: a session id, queues and schema
of its own) and starting a real ``lgdist serve`` process. Fixtures and hooks
that use them live in ``conftest.py``."""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent
for _folder in (HERE, HERE.parent):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from cluster_machinery import Machinery, spawn  # noqa: E402 (needs the path above)

# The server suite's own session id, queues, schema and Redis database.
dist = Machinery()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: Any  # the ServiceProcess running `lgdist serve`
    cluster: Any

    def thread_id(self, prefix: str = "api") -> str:
        return self.cluster.thread_id(prefix)


def wait_until_ok(url: str, process: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.proc.poll() is not None:
            pytest.fail(f"lgdist serve exited with {process.proc.returncode}:\n{process.log_since()}", pytrace=False)
        try:
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"lgdist serve did not answer /ok within {timeout}s:\n{process.log_since()}", pytrace=False)
        time.sleep(0.1)


def start_server(cluster: Any, name: str = "serve", extra_env: dict | None = None, host: str = "127.0.0.1") -> Server:
    port = free_port()
    env = {**cluster.process_env, **(extra_env or {})}
    process = spawn(name, ["serve", "--host", host, "--port", str(port)], env, cluster.tmp)
    url = f"http://127.0.0.1:{port}"
    wait_until_ok(url, process)
    return Server(url=url, process=process, cluster=cluster)
