"""Errors come back in the SDK's shape and status codes, never as a 500."""

from __future__ import annotations

import httpx
import pytest


pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def status_of(call, *args, **kwargs) -> int:
    """The HTTP status the SDK call failed with (the SDK raises its typed
    errors from most calls, a plain ``httpx.HTTPStatusError`` from
    ``runs.wait`` and ``runs.join``: both are ``HTTPStatusError``)."""
    with pytest.raises(httpx.HTTPStatusError) as info:
        result = call(*args, **kwargs)
        if hasattr(result, "__next__"):
            list(result)
    return info.value.response.status_code


def test_unknown_thread_assistant_and_run_are_404(sdk, server):
    assert status_of(sdk.threads.get, "no-such-thread") == 404
    assert status_of(sdk.threads.get_state, "no-such-thread") == 404
    assert status_of(sdk.assistants.get, "no-such-graph") == 404
    assert status_of(sdk.runs.wait, "no-such-thread", "counter", input={"n": 0}) == 404
    tid = sdk.threads.create()["thread_id"]
    assert status_of(sdk.runs.wait, tid, "no-such-graph", input={"n": 0}) == 404
    assert status_of(sdk.runs.get, tid, "no-such-run") == 404
    assert status_of(sdk.runs.stream, "no-such-thread", "counter", input={"n": 0}) == 404
    # if_not_exists="create" makes the thread instead.
    made = server.thread_id("made")
    assert sdk.runs.wait(made, "counter", input={"n": 4}, if_not_exists="create") == {"n": 5, "trail": [4]}


def test_malformed_bodies_are_422(sdk, server):
    tid = sdk.threads.create()["thread_id"]
    assert status_of(sdk.runs.wait, tid, "counter", input={"n": 0}, multitask_strategy="sometimes") == 422
    assert status_of(sdk.threads.get_history, tid, limit=0) == 422
    assert status_of(sdk.runs.stream, tid, "approval", input={"request": "x"}, stream_mode="sideways") == 422
    url = server.url
    cases = [
        ("POST", f"/threads/{tid}/runs/wait", b'{"assistant_id": 5}'),
        ("POST", f"/threads/{tid}/runs/wait", b"not json"),
        ("POST", f"/threads/{tid}/runs/stream", b'{"input": {}}'),
        ("POST", "/threads", b'{"if_exists": "maybe"}'),
        ("POST", "/threads", b"[1, 2]"),
        ("POST", "/threads/search", b'{"limit": "many"}'),
        ("POST", f"/threads/{tid}/history", b'{"limit": -1}'),
        ("POST", f"/threads/{tid}/state", b'{"values": {"n": 1}, "as_node": 7}'),
        ("POST", f"/threads/{tid}/runs/wait", b'{"assistant_id": "counter", "command": {"goto": 5}}'),
        ("POST", "/assistants/search", b'{"limit": 0}'),
        ("POST", f"/threads/{tid}/runs/wait", b'{"assistant_id": "counter", "command": {"goto": {"x": 1}}}'),
        ("POST", f"/threads/{tid}/runs/wait", b'{"assistant_id": "counter", "command": {"update": [1, 2]}}'),
        ("POST", f"/threads/{tid}/runs/wait", b'{"assistant_id": "counter", "command": {"update": "n"}}'),
    ]
    for method, path, body in cases:
        r = httpx.request(method, url + path, content=body, headers={"content-type": "application/json"}, timeout=30)
        assert r.status_code == 422, (path, body, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str)


def test_bad_input_is_never_a_500(sdk, server):
    tid = sdk.threads.create()["thread_id"]
    sdk.runs.wait(tid, "approval", input={"request": "x"})
    url = server.url
    bodies = [b"{}", b"null", b'{"values": 5, "as_node": "nope"}', b'{"values": {"nokey": 1}, "as_node": "ask"}',
              b'{"assistant_id": "approval", "command": {"goto": {"node": 1}}}',
              b'{"assistant_id": "approval", "checkpoint_id": "not-a-checkpoint"}', b'\xff\xfe']  # fmt: skip
    paths = [f"/threads/{tid}/state", f"/threads/{tid}/runs/wait", f"/threads/{tid}/history", "/threads/search",
             f"/threads/{tid}/runs", "/runs/wait", f"/threads/{tid}/state/checkpoint"]  # fmt: skip
    for path in paths:
        for body in bodies:
            r = httpx.post(url + path, content=body, headers={"content-type": "application/json"}, timeout=60)
            assert r.status_code < 500, (path, body, r.status_code, r.text)
    for path in [f"/threads/{tid}/state/nope", f"/threads/{tid}/runs/nope/join", "/assistants/nope/schemas"]:
        assert httpx.get(url + path, timeout=30).status_code == 404, path


def test_assistants(sdk):
    found = sdk.assistants.search(graph_id="approval")
    assert [a["graph_id"] for a in found] == ["approval"]
    assistant = found[0]
    assert sdk.assistants.get(assistant["assistant_id"])["graph_id"] == "approval"
    assert sdk.assistants.get("approval")["assistant_id"] == assistant["assistant_id"]
    graph = sdk.assistants.get_graph("approval")
    assert {n["id"] for n in graph["nodes"]} >= {"ask", "act"}
    schemas = sdk.assistants.get_schemas("approval")
    assert set(schemas["state_schema"]["properties"]) == {"request", "decision", "log"}
    assert sdk.assistants.get_subgraphs("approval") == {}
    assert sdk.assistants.count() == len(sdk.assistants.search(limit=100))
    info = httpx.get(str(sdk.http.client.base_url) + "/info").json()
    assert "approval" in info["graphs"]


def test_random_bodies_on_every_route_are_never_a_500(sdk, server):
    """Seeded random JSON bodies and query values on every route of the
    OpenAPI document (streaming and waiting routes left out: their bodies go
    through the same models as the background-run routes)."""
    import json
    import random

    tid = sdk.threads.create()["thread_id"]
    spec = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    values = [None, 0, -1, 1.5, "x", "", [], {}, [1], {"a": 1}, True, "*", ["ask"], {"node": 3}, [["n", 1]],
              {"checkpoint_id": "zz"}, "zz", ["a", "b"], "nope"]  # fmt: skip
    fields = ["assistant_id", "input", "command", "config", "stream_mode", "interrupt_before", "checkpoint",
              "checkpoint_id", "multitask_strategy", "if_not_exists", "metadata", "values", "as_node", "limit",
              "before", "thread_id", "if_exists", "status", "offset", "sort_by", "namespace", "key", "value",
              "prefix", "filter", "graph_id", "namespace_prefix", "max_depth", "ttl", "ids", "run_ids"]  # fmt: skip
    rng = random.Random(12)
    failures = []
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for path, operations in spec["paths"].items():
            if any(part in path for part in ("/stream", "/wait", "/join")):
                continue
            for method in operations:
                for _ in range(12):
                    url = (path.replace("{thread_id}", rng.choice([tid, "nope"])).replace("{assistant_id}", rng.choice(["approval", "nope"]))
                           .replace("{run_id}", "nope").replace("{checkpoint_id}", "nope").replace("{namespace}", "x"))  # fmt: skip
                    body = {f: rng.choice(values) for f in rng.sample(fields, rng.randint(0, 6))}
                    if rng.random() < 0.3:
                        body["command"] = {k: rng.choice(values) for k in rng.sample(["resume", "goto", "update"], 2)}
                    params = {"limit": rng.choice([1, -1, "x"]), "key": "k", "namespace": rng.choice(["a.b", "", ".."])}
                    r = http.request(method.upper(), url, content=json.dumps(body), params=params if rng.random() < 0.5 else None,
                                     headers={"content-type": "application/json"})  # fmt: skip
                    if r.status_code >= 500:
                        failures.append((method, url, body, r.status_code, r.text[:200]))
    assert failures == []
