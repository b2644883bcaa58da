"""The ``events`` stream mode: the run's LangChain run tree as
``astream_events`` (v2) reports it, in the shape LangGraph's server sends
(compared with ``langgraph dev`` serving the same counter graph): the
graph's run first and last, each node's run tagged ``graph:step:<n>``
under it with LangGraph's metadata, its one ``on_chain_stream`` chunk and
its end; a chat model's tokens as ``on_chat_model_stream`` under its node.
What the workers' stream does not carry (a router's run) is not invented."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def _events(sdk, graph, input):
    tid = sdk.threads.create()["thread_id"]
    parts = list(sdk.runs.stream(tid, graph, input=input, stream_mode="events"))
    assert parts[0].event == "metadata"
    assert {p.event for p in parts[1:]} == {"events"}, [p.event for p in parts]
    return tid, parts[0].data["run_id"], [p.data for p in parts[1:]]


def test_events_are_the_run_tree_of_a_counter_run(sdk):
    tid, run_id, events = _events(sdk, "counter", {"n": 3})
    root = events[0]
    assert (root["event"], root["name"], root["tags"], root["parent_ids"]) == ("on_chain_start", "counter", [], [])
    assert root["data"] == {"input": {"n": 3}}
    assert root["run_id"].replace("-", "") == run_id.replace("-", "")
    assert root["metadata"]["thread_id"] == tid and root["metadata"]["graph_id"] == "counter"
    assert (events[-1]["event"], events[-1]["name"], events[-1]["run_id"]) == ("on_chain_end", "counter", root["run_id"])
    assert events[-1]["data"]["output"] == {"n": 5, "trail": [3, 4]}

    nodes = events[1:-1]
    assert [(e["event"], e["name"], e["tags"]) for e in nodes] == [
        ("on_chain_start", "step", ["graph:step:1"]),
        ("on_chain_stream", "step", ["graph:step:1"]),
        ("on_chain_end", "step", ["graph:step:1"]),
        ("on_chain_start", "step", ["graph:step:2"]),
        ("on_chain_stream", "step", ["graph:step:2"]),
        ("on_chain_end", "step", ["graph:step:2"]),
    ]
    assert all(e["parent_ids"] == [root["run_id"]] for e in nodes)
    first = nodes[0]
    assert first["data"] == {"input": {"n": 3, "trail": []}} or first["data"] == {"input": {"n": 3}}
    assert {k: first["metadata"][k] for k in ("langgraph_step", "langgraph_node", "langgraph_triggers", "langgraph_path")} == {
        "langgraph_step": 1, "langgraph_node": "step", "langgraph_triggers": ["branch:to:step"],
        "langgraph_path": ["__pregel_pull", "step"],
    }  # fmt: skip
    assert first["metadata"]["langgraph_checkpoint_ns"].startswith("step:")
    assert nodes[1]["data"] == {"chunk": {"n": 4, "trail": [3]}}
    assert nodes[2]["data"]["output"] == {"n": 4, "trail": [3]}
    assert nodes[3]["run_id"] != first["run_id"]


def test_events_carry_a_chat_models_tokens(sdk):
    _, _, events = _events(sdk, "chat-events", {"messages": [{"role": "user", "content": "hi"}]})
    names = [(e["event"], e["name"]) for e in events]
    assert names[0] == ("on_chain_start", "chat-events") and names[-1] == ("on_chain_end", "chat-events")
    model_start = names.index(("on_chat_model_start", "ChatModel"))
    call = next(e for e in events if e["event"] == "on_chain_start" and e["name"] == "call_model")
    model = events[model_start]
    assert model["parent_ids"] == [events[0]["run_id"], call["run_id"]]
    tokens = [e["data"]["chunk"]["content"] for e in events if e["event"] == "on_chat_model_stream"]
    assert "".join(tokens) == "hello there friend"
    end = next(e for e in events if e["event"] == "on_chat_model_end")
    assert end["data"]["output"]["content"] == "hello there friend"
