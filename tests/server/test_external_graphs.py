"""A project's own graph module, outside this repository, served and run
the way deploy/README.md tells: the module's folder on ``PYTHONPATH`` and
its graph named in ``LGDIST_GRAPHS`` for a worker and ``lgdist serve``."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_sync_client

from cluster_machinery import wait_until_pinged
from cluster_machinery import start_server
from serverlib import dist

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]

MODULE = textwrap.dedent(
    '''
    import operator
    from typing import Annotated, TypedDict

    from lgdist.graph import END, START, StateGraph


    class Words(TypedDict, total=False):
        text: str
        words: Annotated[list, operator.add]


    def split(state):
        return {"words": state["text"].split()}


    def shout(state):
        return {"words": [w.upper() + "!" for w in state["words"]]}


    builder = StateGraph(Words)
    builder.add_node("split", split)
    builder.add_node("shout", shout)
    builder.add_edge(START, "split")
    builder.add_edge("split", "shout")
    builder.add_edge("shout", END)
    graph = builder.compile()
    '''
)


def _parent_pid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^PPid:\s+(\d+)", status, re.M)[1])


def test_a_graph_module_from_outside_the_repository(cluster, tmp_path):
    project = tmp_path / "acme-project"
    project.mkdir()
    (project / "acme_graphs.py").write_text(MODULE)
    env = {
        "PYTHONPATH": str(project),
        "LGDIST_GRAPHS": "words=acme_graphs:graph",
        # Its own queue: the session's workers do not know this graph.
        "LGDIST_DEFAULT_QUEUE": f"{dist.queue}-acme",
        "LGDIST_NODE_QUEUES": "",
    }
    worker = dist.start_worker("acme", {**cluster.process_env, **env}, cluster.tmp)
    server = None
    try:
        wait_until_pinged(cluster.app, [worker])
        server = start_server(cluster, "serve-acme", env)
        sdk = get_sync_client(url=server.url)
        assert [a["graph_id"] for a in sdk.assistants.search()] == ["words"]
        tid = sdk.threads.create()["thread_id"]
        result = sdk.runs.wait(tid, "words", input={"text": "hello lgdist"})
        assert result == {"text": "hello lgdist", "words": ["hello", "lgdist", "HELLO!", "LGDIST!"]}
        run = sdk.runs.list(tid)[0]
        timeline = httpx.get(f"{server.url}/ui/api/threads/{tid}/runs/{run['run_id']}/timeline").json()
        assert [t["node"] for t in timeline] == ["__start__", "split", "shout"]
        # Run by the acme worker: its own process or one of its pool children.
        for t in timeline:
            pid = int(re.search(r"\(pid (\d+)\)", t["worker"])[1])
            assert worker.proc.pid in (pid, _parent_pid(pid)), t
    finally:
        if server is not None:
            server.process.stop()
        worker.stop()
