"""``RemoteGraph.astream_events(version="v2")`` on real workers, compared
with the same registered graph run locally: the same events, names, run
tree (parents, tags) and LangGraph metadata, modulo what the README lists
as different for a remote stream (the graph's run is named after the
registered graph; a chat model's run is named ``ChatModel`` and has no
input messages; routers have no runs; task and run ids differ)."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage, ToolMessage

from lgdist.checkpoint.memory import InMemorySaver
from lgdist.client import RemoteGraph
from lgdist.client.remote_events import CHAT_MODEL_RUN_NAME
from lgdist.examples import support_agent
from lgdist.types import Command
from workers import chat_events, examples, nested

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]

# Routers run inside their node's run locally; a remote stream has no trace of them.
ROUTERS = {"should_continue", "_route"}
_TASK_NS = re.compile(r"^([^:|]+):[0-9a-f-]{36}$")


def _thread(prefix: str) -> dict:
    return {"configurable": {"thread_id": f"{prefix}-{uuid.uuid4().hex[:10]}"}}


async def _collect(graph: Any, input: Any, config: Any = None, **kwargs: Any) -> tuple[list, Any]:
    """The events, and the exception the stream ended with (if any)."""
    events: list = []
    try:
        async for e in graph.astream_events(input, config, version="v2", **kwargs):
            events.append(e)
    except Exception as exc:  # noqa: BLE001 - compared between the two runs
        return events, exc
    return events, None


def _events(graph: Any, input: Any, config: Any = None, **kwargs: Any) -> list:
    events, error = asyncio.run(_collect(graph, input, config, **kwargs))
    assert error is None, error
    return events


def _ns(value: Any) -> Any:
    """A checkpoint namespace with its task id blanked (ids differ by run)."""
    if not isinstance(value, str):
        return value
    match = _TASK_NS.match(value)
    assert match, f"not a task namespace: {value!r}"
    return f"{match.group(1)}:<task>"


def _no_tool_ids(value: Any) -> Any:
    """Tool messages get random ids (a local run's tool result gets its id
    in place, after its event was sent: compare them without)."""
    if isinstance(value, ToolMessage):
        return value.model_copy(update={"id": None})
    if isinstance(value, dict):
        return {k: _no_tool_ids(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_no_tool_ids(v) for v in value)
    return value


def _data(event: dict) -> dict:
    data = _no_tool_ids(dict(event["data"]))
    if event["event"] in ("on_chat_model_start", "on_chat_model_end"):
        data.pop("input", None)  # the model's input messages are not on the remote stream
    data.pop("workers", None)
    return data


def _shape(events: list, graph_name: str, *, data: bool = True) -> list:
    """Events as comparable tuples: run ids numbered by first appearance,
    the graph's and chat model's names made alike, task ids blanked, and the
    thread id left out of the metadata (threads differ)."""
    numbers: dict = {}

    def number(run_id: str) -> int:
        return numbers.setdefault(run_id, len(numbers))

    shaped = []
    for e in events:
        if e["name"] in ROUTERS:
            continue
        name = {graph_name: "<graph>", "LangGraph": "<graph>", "ScriptedChatModel": CHAT_MODEL_RUN_NAME}.get(e["name"], e["name"])
        meta = {k: v for k, v in e["metadata"].items() if k != "thread_id"}
        for key in ("langgraph_checkpoint_ns", "checkpoint_ns"):
            if key in meta:
                meta[key] = _ns(meta[key])
        shaped.append((
            e["event"], name, number(e["run_id"]), [number(p) for p in e["parent_ids"]],
            sorted(e.get("tags") or []), meta, _data(e) if data else None,
        ))  # fmt: skip
    return shaped


CHAT_INPUT = {"messages": [HumanMessage("hi", id="h-1")]}


def test_a_remote_chat_graphs_events_are_the_local_graphs(client):
    remote = RemoteGraph("chat-events", client=client)
    local = chat_events.build().compile(checkpointer=InMemorySaver())
    remote_events = _events(remote, CHAT_INPUT, _thread("ev-chat"))
    local_events = _events(local, CHAT_INPUT, _thread("ev-chat"))
    assert _shape(remote_events, "chat-events") == _shape(local_events, "chat-events")

    # What a UI reads, spelled out: the graph's run first and last, each
    # node's run under it, the model's tokens under the node that called it.
    root = remote_events[0]
    assert (root["event"], root["name"], root["parent_ids"]) == ("on_chain_start", "chat-events", [])
    assert (remote_events[-1]["event"], remote_events[-1]["run_id"]) == ("on_chain_end", root["run_id"])
    nodes = {e["name"]: e for e in remote_events if e["event"] == "on_chain_start" and e["parent_ids"] == [root["run_id"]]}
    assert list(nodes) == ["prepare", "call_model"]
    assert nodes["call_model"]["metadata"]["langgraph_step"] == 2
    assert nodes["call_model"]["tags"] == ["graph:step:2"]
    tokens = [e for e in remote_events if e["event"] == "on_chat_model_stream"]
    assert [t["data"]["chunk"].content for t in tokens] == ["hello ", "there ", "friend"]
    assert {tuple(t["parent_ids"]) for t in tokens} == {(root["run_id"], nodes["call_model"]["run_id"])}
    assert {t["metadata"]["langgraph_node"] for t in tokens} == {"call_model"}
    end = next(e for e in remote_events if e["event"] == "on_chat_model_end")
    assert end["data"]["output"].content == "hello there friend"


def test_an_agents_events_through_an_interrupt_and_its_resume_are_the_local_agents(client):
    remote = RemoteGraph("support-agent", client=client)
    local = support_agent.build().compile(interrupt_before=["action"], checkpointer=InMemorySaver())
    question = [HumanMessage("weather in sf", id="q1")]
    remote_cfg, local_cfg = _thread("ev-agent"), _thread("ev-agent")
    for input in (question, None):  # up to the breakpoint, then on to the answer
        remote_events = _events(remote, input, remote_cfg)
        local_events = _events(local, input, local_cfg)
        assert _shape(remote_events, "support-agent") == _shape(local_events, "support-agent")
        assert any(e["event"] == "on_chat_model_stream" for e in remote_events)
    names = [e["name"] for e in remote_events if e["event"] == "on_chain_start"]
    assert names == ["support-agent", "action", "agent"]


def test_parallel_sends_have_langgraphs_push_paths_and_the_same_run_tree(client):
    remote = RemoteGraph("fanout", client=client)
    local = examples.build_fanout().compile(checkpointer=InMemorySaver())
    inp = {"items": [1, 2, 3]}
    remote_raw = _events(remote, inp, _thread("ev-fan"))
    local_raw = _events(local, inp, _thread("ev-fan"))

    def path_of_item(events: list) -> dict:
        starts = [e for e in events if e["event"] == "on_chain_start" and e["name"] == "work"]
        return {e["data"]["input"]["item"]: e["metadata"]["langgraph_path"] for e in starts}

    assert path_of_item(remote_raw) == path_of_item(local_raw) == {
        1: ("__pregel_push", 0), 2: ("__pregel_push", 1), 3: ("__pregel_push", 2),
    }  # fmt: skip
    remote_events = _shape(remote_raw, "fanout", data=False)
    local_events = _shape(local_raw, "fanout", data=False)
    # Parallel tasks' events interleave in any order: compare each run's events.
    def by_run(shaped: list) -> list:
        runs: dict = {}
        for e in shaped:
            runs.setdefault(e[2], []).append(e[:2] + e[3:])
        return sorted(runs.values(), key=repr)

    assert by_run(remote_events) == by_run(local_events)
    assert (remote_events[0], remote_events[-1]) == (local_events[0], local_events[-1])
    paths = sorted(e[5]["langgraph_path"] for e in remote_events if e[0] == "on_chain_start" and e[1] == "work")
    assert paths == [("__pregel_push", 0), ("__pregel_push", 1), ("__pregel_push", 2)]


def test_a_failing_node_ends_the_remote_event_stream_with_its_error_like_locally(client):
    remote = RemoteGraph("failing", client=client)
    remote_events, remote_error = asyncio.run(_collect(remote, {"n": 0}, _thread("ev-fail")))
    local_events, local_error = asyncio.run(_collect(examples.failing, {"n": 0}, _thread("ev-fail")))
    assert isinstance(remote_error, ValueError) and isinstance(local_error, ValueError)
    assert str(local_error) in str(remote_error)
    assert _shape(remote_events, "failing") == _shape(local_events, "failing")
    assert [e["name"] for e in remote_events] == ["failing", "boom"]


def test_an_interrupt_inside_a_node_and_its_resume_give_the_local_events(client):
    remote = RemoteGraph("approval", client=client)
    local = examples.build_approval().compile(checkpointer=InMemorySaver())
    remote_cfg, local_cfg = _thread("ev-ask"), _thread("ev-ask")
    for input in ({"request": "deploy"}, Command(resume="yes")):
        remote_events = _events(remote, input, remote_cfg)
        local_events = _events(local, input, local_cfg)
        # Interrupt ids are per thread: compare the interrupts' values.
        for events in (remote_events, local_events):
            for e in events:
                chunk = e["data"].get("chunk")
                if isinstance(chunk, dict) and "__interrupt__" in chunk:
                    e["data"]["chunk"] = {"__interrupt__": [i.value for i in chunk["__interrupt__"]]}
        assert _shape(remote_events, "approval") == _shape(local_events, "approval")
    assert [e["name"] for e in remote_events if e["event"] == "on_chain_end"] == ["ask", "act", "approval"]


def test_a_subgraph_node_is_one_run_and_its_chunks_stream_with_subgraphs_true(client):
    remote = RemoteGraph("nested", client=client)
    local = nested.build().compile(checkpointer=InMemorySaver())
    kwargs = {"subgraphs": True, "stream_mode": ["updates", "custom"]}
    remote_events = _events(remote, {"topic": "t"}, _thread("ev-sub"), **kwargs)
    local_events = _events(local, {"topic": "t"}, _thread("ev-sub"), **kwargs)
    # Runs inside the subgraph (its graph run and its nodes) are not on the
    # remote stream; its chunks are, under their namespace.
    inside = {e["run_id"] for e in local_events if len(e["parent_ids"]) >= 2}
    local_events = [e for e in local_events if e["run_id"] not in inside]

    def without_task_ids(events: list) -> list:
        for e in events:
            chunk = e["data"].get("chunk")
            if e["parent_ids"] == [] and isinstance(chunk, tuple):
                e["data"]["chunk"] = (tuple(_ns(n) for n in chunk[0]), *chunk[1:])
        return events

    remote_shape = _shape(without_task_ids(remote_events), "nested")
    assert remote_shape == _shape(without_task_ids(local_events), "nested")
    namespaced = [e[6]["chunk"] for e in remote_shape if e[0] == "on_chain_stream" and e[1] == "<graph>" and e[6]["chunk"][0]]
    assert namespaced == [
        (("child:<task>",), "custom", {"drafting": "t"}),
        (("child:<task>",), "updates", {"draft": {"log": ["child:draft"]}}),
        (("child:<task>",), "updates", {"polish": {"log": ["child:polish"]}}),
    ]


def test_event_filters_and_stream_modes_apply_as_locally(client):
    remote = RemoteGraph("chat-events", client=client)
    local = chat_events.build().compile(checkpointer=InMemorySaver())
    for kwargs in (
        {"include_types": ["chat_model"]},
        {"include_names": ["prepare"]},
        {"exclude_tags": ["graph:step:2"]},
        {"stream_mode": "values"},
        {"stream_mode": ["updates", "values"]},
    ):
        remote_events = _events(remote, CHAT_INPUT, _thread("ev-filter"), **kwargs)
        local_events = _events(local, CHAT_INPUT, _thread("ev-filter"), **kwargs)
        assert remote_events, kwargs
        assert _shape(remote_events, "chat-events") == _shape(local_events, "chat-events"), kwargs


class _Runs(BaseCallbackHandler):
    """The run tree as a plain callback handler (a tracer) sees it."""

    def __init__(self) -> None:
        self.runs: list = []
        self.numbers: dict = {}

    def _n(self, run_id: Any) -> Any:
        return None if run_id is None else self.numbers.setdefault(run_id, len(self.numbers))

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs):
        self.runs.append(("chain", kwargs.get("name"), self._n(run_id), self._n(parent_run_id)))

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kwargs):
        self.runs.append(("chat_model", CHAT_MODEL_RUN_NAME, self._n(run_id), self._n(parent_run_id)))

    def on_llm_end(self, response, *, run_id, **kwargs):
        self.runs.append(("chat_model_end", response.generations[0][0].message.content, self._n(run_id)))

    def on_chain_end(self, outputs, *, run_id, **kwargs):
        self.runs.append(("chain_end", self._n(run_id)))


def test_astream_reports_the_remote_run_to_callback_handlers(client):
    remote = RemoteGraph("chat-events", client=client)
    local = chat_events.build().compile(checkpointer=InMemorySaver())

    async def runs(graph: Any) -> list:
        handler = _Runs()
        chunks = [c async for c in graph.astream(CHAT_INPUT, {**_thread("ev-cb"), "callbacks": [handler]})]
        assert [list(c) for c in chunks] == [["prepare"], ["call_model"]]
        return [r if r[:2] != ("chain", "LangGraph") else ("chain", "chat-events", *r[2:]) for r in handler.runs]

    assert asyncio.run(runs(remote)) == asyncio.run(runs(local))


def test_astream_log_of_a_remote_run_has_the_local_runs_log(client):
    remote = RemoteGraph("chat-events", client=client)
    local = chat_events.build().compile(checkpointer=InMemorySaver())

    async def log(graph: Any) -> tuple[list, Any]:
        paths, state = [], None
        async for patch in graph.astream_log(CHAT_INPUT, _thread("ev-log")):
            paths.append([op["path"].replace("ScriptedChatModel", CHAT_MODEL_RUN_NAME) for op in patch.ops])
            state = patch if state is None else state + patch
        return paths, state

    remote_paths, remote_state = asyncio.run(log(remote))
    local_paths, local_state = asyncio.run(log(local))
    assert remote_paths == local_paths
    assert remote_state.state["final_output"] == local_state.state["final_output"]
    assert remote_state.state["logs"][CHAT_MODEL_RUN_NAME]["final_output"]["generations"][0][0]["text"] == "hello there friend"
