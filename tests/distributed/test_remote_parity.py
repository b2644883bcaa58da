"""``RemoteGraph`` on real workers behaves exactly like the same graph run
in-process with ``InMemorySaver``: final values, the chunks of every stream
mode, ``get_state`` and the checkpoint history.

Ids that are random by design (message, checkpoint, task, interrupt, thread
ids) are numbered by first appearance, so "the same id twice" still counts;
timestamps are blanked. The chunks of the parallel tasks of one step arrive
in completion order, so they are compared as a multiset.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any, Callable, Optional

import pytest
from langchain_core.messages import BaseMessage, HumanMessage

from lgdist.checkpoint.memory import InMemorySaver
from lgdist.client import RemoteGraph
from lgdist.examples import support_agent
from lgdist.types import Command, Interrupt, PregelTask, StateSnapshot
from workers import examples, nested, parity

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def _local(build: Callable[[], Any], **compile_kwargs: Any) -> Callable[[], Any]:
    return lambda: build().compile(checkpointer=InMemorySaver(), **compile_kwargs)


# name -> (registered graph, local twin, inputs streamed one after another).
# Inputs are built afresh for every run: add_messages gives an input message
# its id in place, so a shared message object would carry one run's id into
# the next.
SCENARIOS: dict[str, tuple[str, Callable[[], Any], Callable[[], list]]] = {
    "seed-breakpoint-then-continue": (
        "support-agent",
        _local(support_agent.build, interrupt_before=["action"]),
        lambda: [[HumanMessage(content="what is the weather in sf currently")], None],
    ),
    "fanout-send": ("fanout", _local(examples.build_fanout), lambda: [{"items": [1, 2, 3, 4, 5]}]),
    "interrupt-then-command-resume": (
        "approval",
        _local(examples.build_approval),
        lambda: [{"request": "refund"}, Command(resume="yes")],
    ),
    "loop-until-condition": ("counter", _local(examples.build_counter), lambda: [{"n": 0}]),
    "second-input-on-finished-thread": ("counter", _local(examples.build_counter), lambda: [{"n": 3}, {"n": 1}]),
    "input-and-output-schemas": ("schemas", _local(examples.build_schemas), lambda: [{"question": "hi"}]),
    "custom-stream-writer": ("writer", _local(examples.build_writer), lambda: [{"n": 1}]),
    "deferred-node-after-uneven-branches": ("deferred", _local(examples.build_deferred), lambda: [{"log": []}]),
    "subgraph-node": ("nested", _local(nested.build), lambda: [{"topic": "t"}]),
    # The differential scenarios' graphs (workers/parity.py).
    "fan-out-fan-in-join": ("parity-join", _local(parity.build_join), lambda: [{"log": []}]),
    "send-map-reduce": (
        "parity-map-reduce", _local(parity.build_map_reduce), lambda: [{"subjects": ["cats", "dogs", "owls"]}]
    ),
    "command-goto-and-update": ("parity-command-goto", _local(parity.build_command_goto), lambda: [{"n": 3}, {"n": 4}]),
    "dataclass-state": ("parity-dataclass-state", _local(parity.build_dataclass_state), lambda: [{"item": "tea"}]),
    "pydantic-state": ("parity-pydantic-state", _local(parity.build_pydantic_state), lambda: [{"title": "broken"}]),
    "messages-with-remove-message": (
        "parity-messages", _local(parity.build_messages), lambda: [{"messages": [HumanMessage(content="hi")]}]
    ),
    "interrupt-inside-subgraph-then-resume": (
        "parity-subgraph-interrupt", _local(parity.build_subgraph_interrupt), lambda: [{"log": []}, Command(resume="yes")]
    ),
    "two-interrupts-in-one-node": (
        "parity-two-interrupts",
        _local(parity.build_two_interrupts),
        lambda: [{"log": []}, Command(resume="a"), Command(resume="b")],
    ),
    "interrupt-after-at-compile": (
        "parity-breakpoint-after", _local(parity.build_breakpoint_after, **parity.BREAKPOINT_AFTER), lambda: [{"log": []}, None]
    ),
}
# Scenarios also streamed with subgraphs=True: chunks come as (namespace, ...).
SUBGRAPH_SCENARIOS = ["subgraph-node", "interrupt-inside-subgraph-then-resume"]
MODES = ["values", "updates", ("values", "updates"), "messages", "tasks", "checkpoints", "debug", "custom"]
# Modes whose chunks come one per step or from one node at a time: their
# order is part of the contract.
ORDERED_MODES = ("values", "messages", "checkpoints", "custom")

_RANDOM_ID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{32}\b|parity-[0-9a-f]{12}"
)
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?$")


class Unordered(list):
    """Chunks whose relative order is not part of the contract."""


class _Ids:
    """Numbers random ids by first appearance."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __call__(self, raw: Any) -> Any:
        if raw is None:
            return None
        return self.seen.setdefault(raw, f"<id{len(self.seen)}>")


def _norm(value: Any, ids: _Ids) -> Any:
    if isinstance(value, Unordered):
        # Ids inside appear in any order: numbering them would be arbitrary.
        items = [_norm(v, _Ids()) for v in value]
        return ("<unordered>", sorted(items, key=repr))
    if isinstance(value, str):
        if _TIMESTAMP.match(value):
            return "<ts>"
        return _RANDOM_ID.sub(lambda m: ids(m.group(0)), value)
    if isinstance(value, BaseMessage):
        out = {"type": type(value).__name__, "content": value.content, "id": ids(value.id)}
        for key in ("name", "status"):
            if getattr(value, key, None) is not None:
                out[key] = getattr(value, key)
        if getattr(value, "tool_call_id", None):
            out["tool_call_id"] = ids(value.tool_call_id)
        if getattr(value, "tool_calls", None):
            out["tool_calls"] = [
                {"name": c["name"], "args": _norm(c["args"], ids), "id": ids(c.get("id"))} for c in value.tool_calls
            ]
        return out
    if isinstance(value, Interrupt):
        return {"interrupt": _norm(value.value, ids), "id": ids(value.id)}
    if isinstance(value, StateSnapshot):
        return {
            "values": _norm(value.values, ids),
            "next": value.next,
            "checkpoint": ids(value.config["configurable"].get("checkpoint_id")),
            "parent": ids((value.parent_config or {}).get("configurable", {}).get("checkpoint_id")),
            "metadata": _norm(value.metadata, ids),
            "tasks": [_norm(t, ids) for t in value.tasks],
            "interrupts": _norm(value.interrupts, ids),
        }
    if isinstance(value, PregelTask):
        return {
            "id": ids(value.id),
            "name": value.name,
            "path": _norm(value.path, ids),
            "error": repr(value.error) if value.error else None,
            "interrupts": _norm(value.interrupts, ids),
            "result": _norm(value.result, ids),
        }
    if isinstance(value, dict):
        # Which process ran a node is the one thing that must differ.
        return {_norm(k, ids): (len(v) if k == "workers" else _norm(v, ids)) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_norm(v, ids) for v in value)
    if isinstance(value, list):
        return [_norm(v, ids) for v in value]
    return value


def _parallel_key(chunk: Any) -> Optional[tuple]:
    """Chunks with the same key, next to each other, come from parallel
    tasks of one node in one step (our graphs' only kind of parallelism)."""
    if not isinstance(chunk, dict):
        return None
    if "type" in chunk and "payload" in chunk:  # debug
        if chunk["type"] == "checkpoint":
            return None
        return ("debug", chunk["type"], chunk["payload"].get("name"))
    if "id" in chunk and "name" in chunk:  # tasks: a start, or a result
        return ("task", "result" in chunk, chunk["name"])
    if len(chunk) == 1:  # updates
        return ("update", next(iter(chunk)))
    return None


def _group_parallel_chunks(chunks: list, mode: Any) -> list:
    """Make each step's parallel chunks one multiset. With ``values`` in a
    multi-mode stream, a step's updates are the chunks between two
    ``values`` chunks."""
    if mode in ORDERED_MODES:
        return chunks
    out: list = []
    if isinstance(mode, tuple):
        for kind, chunk in chunks:
            if kind == "values":
                out.append((kind, chunk))
            else:
                if not (out and isinstance(out[-1], Unordered)):
                    out.append(Unordered())
                out[-1].append((kind, chunk))
        return out
    last_key = None
    for chunk in chunks:
        key = _parallel_key(chunk)
        if key is not None and key == last_key:
            out[-1].append(chunk)
        else:
            out.append(Unordered([chunk]) if key is not None else chunk)
        last_key = key
    return out


def _without_message_ids(value: Any) -> Any:
    if isinstance(value, BaseMessage):
        return value.model_copy(update={"id": None})
    if isinstance(value, dict):
        return {k: _without_message_ids(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_without_message_ids(v) for v in value)
    return value


def _as_received(chunk: Any, mode: Any) -> Any:
    """A chunk as it was when it arrived. The local runtime hands out the
    very message objects that add_messages later gives an id in place, so
    whether a message a node returned without an id has one in its
    updates/tasks/debug chunk depends on thread timing (reported; LangGraph
    shows the id). Those chunks are compared without message ids; "values"
    chunks, the state and the history keep them."""
    kind = chunk[0] if isinstance(mode, tuple) else mode
    chunk = copy.deepcopy(chunk)
    return chunk if kind == "values" else _without_message_ids(chunk)


def observe(graph: Any, inputs: list, mode: Any) -> Any:
    """What a LangGraph user sees: every stream chunk, the state after each
    call, and the whole history (newest first, as get_state_history gives)."""
    thread = {"configurable": {"thread_id": f"parity-{uuid.uuid4().hex[:12]}"}}
    stream_mode = list(mode) if isinstance(mode, tuple) else mode
    calls = []
    for item in inputs:
        chunks = [_as_received(c, mode) for c in graph.stream(item, thread, stream_mode=stream_mode)]
        calls.append({"stream": _group_parallel_chunks(chunks, mode), "state": graph.get_state(thread)})
    history = list(graph.get_state_history(thread))
    return _norm({"calls": calls, "history": history}, _Ids())


@pytest.mark.parametrize("mode", MODES, ids=lambda m: "+".join(m) if isinstance(m, tuple) else m)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_remote_graph_streams_state_and_history_match_the_local_runtime(cluster, client, scenario, mode):
    name, local_graph, inputs = SCENARIOS[scenario]
    expected = observe(local_graph(), inputs(), mode)
    actual = observe(RemoteGraph(name, client=client), inputs(), mode)

    assert actual["calls"][-1]["state"]["values"] == expected["calls"][-1]["state"]["values"]
    for i, (want, got) in enumerate(zip(expected["calls"], actual["calls"])):
        assert got["stream"] == want["stream"], f"stream of call {i} differs"
        assert got["state"] == want["state"], f"get_state after call {i} differs"
    assert len(actual["history"]) == len(expected["history"])
    assert [(h["metadata"]["source"], h["metadata"]["step"]) for h in actual["history"]] == [
        (h["metadata"]["source"], h["metadata"]["step"]) for h in expected["history"]
    ]
    for i, (want, got) in enumerate(zip(expected["history"], actual["history"])):
        assert got == want, f"history entry {i} (newest first) differs"
    assert actual == expected


def test_remote_invoke_returns_only_the_output_schema_like_local_invoke(cluster, client):
    local = examples.build_schemas().compile(checkpointer=InMemorySaver())
    want = local.invoke({"question": "hi"}, {"configurable": {"thread_id": f"parity-{uuid.uuid4().hex[:12]}"}})
    remote = RemoteGraph("schemas", client=client)
    thread = {"configurable": {"thread_id": f"parity-{uuid.uuid4().hex[:12]}"}}
    assert remote.invoke({"question": "hi"}, thread) == want == {"answer": "HI!"}
    assert remote.get_state(thread).values == {"question": "hi", "draft": "HI", "answer": "HI!"}


def test_remote_invoke_of_an_interrupted_graph_returns_the_interrupt_like_local_invoke(cluster, client):
    local = examples.build_approval().compile(checkpointer=InMemorySaver())
    want = local.invoke({"request": "x"}, {"configurable": {"thread_id": f"parity-{uuid.uuid4().hex[:12]}"}})
    got = RemoteGraph("approval", client=client).invoke(
        {"request": "x"}, {"configurable": {"thread_id": f"parity-{uuid.uuid4().hex[:12]}"}}
    )
    assert _norm(got, _Ids()) == _norm(want, _Ids())
    assert [i.value for i in got["__interrupt__"]] == [{"question": "approve x?"}]


def test_remote_invoke_returns_the_local_final_values(cluster, client):
    local = examples.build_fanout().compile(checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": f"parity-{uuid.uuid4().hex[:12]}"}}
    remote_thread = {"configurable": {"thread_id": f"parity-{uuid.uuid4().hex[:12]}"}}
    want = local.invoke({"items": [3, 1, 2]}, thread)
    got = RemoteGraph("fanout", client=client).invoke({"items": [3, 1, 2]}, remote_thread)
    assert len(got.pop("workers")) == len(want.pop("workers")) == 3
    assert got == want == {"items": [3, 1, 2], "results": [6, 2, 4, 12]}


def observe_subgraphs(graph: Any, inputs: list, mode: Any) -> Any:
    """Every ``(namespace, ...)`` chunk of ``stream(..., subgraphs=True)``
    and the state with its subgraphs after each call. The scenarios' graphs
    run one task per step, so the order is the contract in every mode."""
    thread = {"configurable": {"thread_id": f"parity-{uuid.uuid4().hex[:12]}"}}
    stream_mode = list(mode) if isinstance(mode, tuple) else mode
    calls = []
    for item in inputs:
        chunks = [copy.deepcopy(c) for c in graph.stream(item, thread, stream_mode=stream_mode, subgraphs=True)]
        calls.append({"stream": chunks, "state": graph.get_state(thread, subgraphs=True)})
    return _norm(calls, _Ids())


@pytest.mark.parametrize("mode", MODES, ids=lambda m: "+".join(m) if isinstance(m, tuple) else m)
@pytest.mark.parametrize("scenario", SUBGRAPH_SCENARIOS)
def test_remote_graph_streams_subgraphs_like_the_local_runtime(cluster, client, scenario, mode):
    name, local_graph, inputs = SCENARIOS[scenario]
    expected = observe_subgraphs(local_graph(), inputs(), mode)
    actual = observe_subgraphs(RemoteGraph(name, client=client), inputs(), mode)
    if mode in ("values", "updates", "tasks", "checkpoints", "debug"):
        assert any(chunk[0] != () for call in actual for chunk in call["stream"]), "no subgraph chunk"
    for i, (want, got) in enumerate(zip(expected, actual)):
        assert got["stream"] == want["stream"], f"stream of call {i} differs"
        assert got["state"] == want["state"], f"get_state(subgraphs=True) after call {i} differs"
    assert actual == expected
