"""Flower, started with ``lgdist flower``, sees lgdist's tasks (the workers
send events) and guards its HTTP API with basic auth."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Iterator, Optional

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(90)]

AUTH = ("flower-user", "flower-pass")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, auth: Optional[tuple[str, str]] = None) -> tuple[int, Any]:
    """(HTTP status, decoded JSON body or None)."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(":".join(auth).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
            return response.status, json.loads(body) if body.strip().startswith((b"{", b"[")) else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


@pytest.fixture
def flower(cluster: Any) -> Iterator[str]:
    """``lgdist flower`` on a free port; yields its base URL."""
    port = _free_port()
    proc = cluster.spawn(f"flower-{port}", ["flower", f"--port={port}", "--address=127.0.0.1", f"--basic-auth={':'.join(AUTH)}"])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.proc.poll() is not None:
                pytest.fail(f"flower exited with {proc.proc.returncode}:\n{proc.log_since()}")
            try:
                if get(f"{url}/healthcheck")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"flower did not answer within 30s:\n{proc.log_since()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.stop()


def test_flower_lists_lgdist_tasks_and_its_api_requires_basic_auth(cluster, client, flower):
    assert get(f"{flower}/api/tasks")[0] == 401
    assert get(f"{flower}/api/tasks", auth=("flower-user", "wrong"))[0] == 401

    # Flower only knows tasks whose events it received after it connected
    # (its event consumer may start a moment after its HTTP server): submit
    # again until it has seen one whole run.
    # Only the wide step (the two "work" tasks) is a chord with a
    # finish_step, which runs the one-task step after it ("join") itself;
    # the one-task steps at the start ("__start__", "split") may run inline
    # in lgdist.start (whose kwargs name only the run) or in one run_node.
    expected = sorted(["lgdist.finish_step"] + [f"lgdist.run_node[{n}]" for n in ("work", "work")])
    inline = {"lgdist.run_node[__start__]", "lgdist.run_node[split]"}

    def names_of(tasks: list) -> list:
        return sorted(t.get("name") for t in tasks if t.get("name") not in inline)
    deadline = time.monotonic() + 30
    ours: list = []
    while time.monotonic() < deadline:
        thread_id = cluster.thread_id("flower")
        assert cluster.wait_run(client.submit("fanout", {"items": [1, 2]}, thread_id))["status"] == "success"
        for _ in range(10):
            status, tasks = get(f"{flower}/api/tasks", auth=AUTH)
            assert status == 200
            ours = [t for t in tasks.values() if thread_id in str(t.get("kwargs"))]
            if names_of(ours) == expected and all(t.get("state") == "SUCCESS" for t in ours):
                break
            time.sleep(0.3)
        else:
            continue
        break

    # Readable in Flower: the node in the task name, the thread id in the kwargs.
    assert names_of(ours) == expected
    assert len(ours) <= len(expected) + len(inline)
    assert all(t.get("state") == "SUCCESS" for t in ours), [(t["name"], t.get("state")) for t in ours]
    assert {t.get("worker") for t in ours} <= {w.nodename for w in cluster.workers}
    # State stays out of task arguments (Flower shows them, and can replay them).
    assert not [t["kwargs"] for t in ours if "items" in t["kwargs"]]


def test_a_failing_node_is_a_failed_task_in_flower_and_the_run_ends_with_its_error(cluster, client, flower):
    """Before, a node that raised was a task with the result
    {'status': 'error'}: green SUCCESS in Flower, an empty Failed tab."""
    deadline = time.monotonic() + 60
    failed: list = []
    while time.monotonic() < deadline and not failed:
        thread_id = cluster.thread_id("flower-fail")
        run_id = client.submit("failing", {"n": 0}, thread_id)
        run = cluster.wait_run(run_id)
        assert run["status"] == "error"
        assert "node 'boom' failed" in run["error"] and "the node failed on purpose" in run["error"]
        for _ in range(20):
            status, tasks = get(f"{flower}/api/tasks", auth=AUTH)
            assert status == 200
            # A short run's first one-task steps run inside its lgdist.start
            # task (its kwargs name the run); later steps are run_node tasks.
            ours = [t for t in tasks.values() if thread_id in str(t.get("kwargs")) or run_id in str(t.get("kwargs"))]
            failed = [
                t for t in ours if t.get("state") == "FAILURE" and "node 'boom' failed" in str(t.get("exception"))
            ]  # fmt: skip
            if failed:
                break
            time.sleep(0.3)
    assert failed, "Flower never listed the failing node's task as FAILURE"
    assert "the node failed on purpose" in str(failed[0].get("exception"))
    assert cluster.thread_status(thread_id) == "error"
    cluster.assert_thread_sound(thread_id)
