"""langgraph's own ``RemoteGraph(name, url=...)`` against ``lgdist serve``
returns what the same graph returns locally."""

from __future__ import annotations

import pytest
from langgraph.pregel.remote import RemoteGraph, RemoteException
from langgraph.types import Command

from lgdist.checkpoint.memory import InMemorySaver
from lgdist.examples import support_agent
from lgdist.types import Command as LocalCommand
from lgdist.server.serialize import jsonable
from workers import examples

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]


def _plain(value):
    """JSON data without the ids lgdist and LangGraph pick at random."""
    value = jsonable(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _local(builder):
    return builder.compile(checkpointer=InMemorySaver())


def test_invoke_and_stream_equal_local_results(server):
    remote = RemoteGraph("counter", url=server.url)
    local = examples.counter
    assert remote.invoke({"n": 0}) == local.invoke({"n": 0})
    assert list(remote.stream({"n": 1}, stream_mode="updates")) == list(local.stream({"n": 1}, stream_mode="updates"))
    assert list(remote.stream({"n": 2}, stream_mode="values")) == list(local.stream({"n": 2}, stream_mode="values"))


def test_send_fan_out_equals_local(server):
    remote = RemoteGraph("fanout", url=server.url)
    got = remote.invoke({"items": [1, 2, 3, 4]})
    want = examples.fanout.invoke({"items": [1, 2, 3, 4]})
    assert got["results"] == want["results"] == [2, 4, 6, 8, 20]
    assert len(got["workers"]) == 4


def test_interrupt_and_command_resume_equal_local(server):
    remote = RemoteGraph("approval", url=server.url)
    local = _local(examples.build_approval())
    rcfg = {"configurable": {"thread_id": server.thread_id("rg")}}
    lcfg = {"configurable": {"thread_id": "local"}}

    paused = remote.invoke({"request": "refund"}, rcfg)
    want = local.invoke({"request": "refund"}, lcfg)
    assert _plain(paused) == _plain(want)
    assert paused["__interrupt__"][0]["value"] == {"question": "approve refund?"}

    rstate, lstate = remote.get_state(rcfg), local.get_state(lcfg)
    assert rstate.values == lstate.values and rstate.next == lstate.next == ("ask",)
    assert [i.value for i in rstate.interrupts] == [i.value for i in lstate.interrupts]

    assert remote.invoke(Command(resume="yes"), rcfg) == local.invoke(LocalCommand(resume="yes"), lcfg)
    assert remote.get_state(rcfg).values == local.get_state(lcfg).values
    rhist = [s.metadata["step"] for s in remote.get_state_history(rcfg)]
    lhist = [s.metadata["step"] for s in local.get_state_history(lcfg)]
    assert rhist == lhist


def test_seed_flow_equals_local(server):
    remote = RemoteGraph("support-agent", url=server.url)
    local = support_agent.build().compile(checkpointer=InMemorySaver(), interrupt_before=["action"])
    rcfg = {"configurable": {"thread_id": server.thread_id("rg-seed")}}
    lcfg = {"configurable": {"thread_id": "local"}}
    question = [{"role": "user", "content": "what is the weather in sf currently"}]
    got = list(remote.stream(question, rcfg, stream_mode="values"))
    want = list(local.stream(question, lcfg, stream_mode="values"))
    assert _plain(got) == _plain(want)
    got = list(remote.stream(None, rcfg, stream_mode="values"))
    want = list(local.stream(None, lcfg, stream_mode="values"))
    assert _plain(got) == _plain(want)
    assert _plain(remote.get_state(rcfg).values) == _plain(local.get_state(lcfg).values)


def test_update_state_as_node_equals_local(server):
    remote = RemoteGraph("approval", url=server.url)
    local = _local(examples.build_approval())
    rcfg = {"configurable": {"thread_id": server.thread_id("rg-upd")}}
    lcfg = {"configurable": {"thread_id": "local"}}
    remote.invoke({"request": "r"}, rcfg)
    local.invoke({"request": "r"}, lcfg)
    new_config = remote.update_state(rcfg, {"decision": "edited", "log": ["by hand"]}, as_node="ask")
    local.update_state(lcfg, {"decision": "edited", "log": ["by hand"]}, as_node="ask")
    assert new_config["configurable"]["checkpoint_id"]
    rstate, lstate = remote.get_state(rcfg), local.get_state(lcfg)
    assert rstate.values == lstate.values and rstate.next == lstate.next == ("act",)
    assert remote.invoke(None, rcfg) == local.invoke(None, lcfg)


async def test_async_remote_graph(server):
    remote = RemoteGraph("counter", url=server.url)
    assert await remote.ainvoke({"n": 0}) == examples.counter.invoke({"n": 0})
    chunks = [c async for c in remote.astream({"n": 3}, stream_mode="updates")]
    assert chunks == list(examples.counter.stream({"n": 3}, stream_mode="updates"))


def test_failed_run_raises_remote_exception(server):
    with pytest.raises(RemoteException, match="failed on purpose"):
        RemoteGraph("failing", url=server.url).invoke({"n": 0})
