"""API keys: required in ``x-api-key`` once ``LGDIST_API_KEYS`` is set; a
server bound to a non-loopback address refuses to start without one."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import AuthenticationError

from cluster_machinery import LGDIST_BIN, free_port, start_server

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def test_api_keys_are_required_when_configured(cluster, monkeypatch):
    monkeypatch.delenv("LANGGRAPH_API_KEY", raising=False)
    srv = start_server(cluster, "serve-auth", {"LGDIST_API_KEYS": "first-key, second-key"})
    try:
        assert httpx.get(f"{srv.url}/ok").status_code == 200  # readiness needs no key
        assert httpx.get(f"{srv.url}/info").status_code == 401
        assert httpx.get(f"{srv.url}/info", headers={"x-api-key": "wrong"}).status_code == 401
        with pytest.raises(AuthenticationError):
            get_sync_client(url=srv.url, api_key=None).threads.create()
        client = get_sync_client(url=srv.url, api_key="second-key")
        tid = client.threads.create()["thread_id"]
        assert client.runs.wait(tid, "counter", input={"n": 4}) == {"n": 5, "trail": [4]}
    finally:
        srv.process.stop()


def test_refuses_a_public_address_without_a_key(cluster):
    env = {k: v for k, v in cluster.process_env.items() if k != "LGDIST_API_KEYS"}
    proc = subprocess.run(
        [str(LGDIST_BIN), "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "LGDIST_API_KEYS" in proc.stderr


def test_loopback_needs_no_key(server):
    assert httpx.get(f"{server.url}/info").status_code == 200
