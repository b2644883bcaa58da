"""The seed program over HTTP: the real ``langgraph-sdk`` client streams the
support agent until its breakpoint before ``action``, reads the state, and
resumes (with ``None`` and with ``command={"resume": ...}``)."""

from __future__ import annotations

import pytest

from lgdist.testing import weather_answer

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(120)]

QUESTION = "what is the weather in sf currently"


def _types(messages: list) -> list[str]:
    return [m["type"] for m in messages]


def test_seed_flow_with_the_sync_sdk(sdk):
    thread = sdk.threads.create(metadata={"user": "seed"})
    tid = thread["thread_id"]
    assert thread["status"] == "idle"

    parts = list(
        sdk.runs.stream(tid, "support-agent", input=[{"role": "user", "content": QUESTION}], stream_mode="values")
    )
    assert parts[0].event == "metadata" and parts[0].data["run_id"]
    values = [p.data for p in parts if p.event == "values"]
    assert [len(v) for v in values] == [1, 2]
    assert values[-1][-1]["tool_calls"][0]["name"] == "search"

    state = sdk.threads.get_state(tid)
    assert state["next"] == ["action"]
    assert _types(state["values"]) == ["human", "ai"]
    assert sdk.threads.get(tid)["status"] == "interrupted"

    # Resume past the breakpoint: no input.
    final = sdk.runs.wait(tid, "support-agent", input=None)
    assert _types(final) == ["human", "ai", "tool", "ai"]
    assert weather_answer(QUESTION) in final[-1]["content"]
    assert sdk.threads.get_state(tid)["next"] == []
    thread = sdk.threads.get(tid)
    assert thread["status"] == "idle"
    assert thread["metadata"]["user"] == "seed" and thread["metadata"]["graph_id"] == "support-agent"
    history = sdk.threads.get_history(tid, limit=10)
    assert [h["metadata"]["step"] for h in history] == [3, 2, 1, 0, -1]


def test_interrupt_with_a_dict_payload_resumed_by_command(sdk):
    tid = sdk.threads.create()["thread_id"]
    parts = list(sdk.runs.stream(tid, "approval", input={"request": "refund"}, stream_mode=["values", "updates"]))
    updates = [p.data for p in parts if p.event == "updates"]
    interrupts = [u["__interrupt__"] for u in updates if "__interrupt__" in u]
    assert interrupts and interrupts[0][0]["value"] == {"question": "approve refund?"}
    last_values = [p.data for p in parts if p.event == "values"][-1]
    assert last_values["__interrupt__"][0]["value"] == {"question": "approve refund?"}

    state = sdk.threads.get_state(tid)
    assert state["next"] == ["ask"]
    assert state["interrupts"][0]["value"] == {"question": "approve refund?"}
    assert sdk.threads.get(tid)["interrupts"]

    final = sdk.runs.wait(tid, "approval", command={"resume": "yes"})
    assert final == {"request": "refund", "decision": "yes", "log": ["asked", "acted:yes"]}
    assert sdk.threads.get(tid)["status"] == "idle"


async def test_seed_flow_with_the_async_sdk(asdk):
    thread = await asdk.threads.create()
    tid = thread["thread_id"]
    values = []
    async for part in asdk.runs.stream(tid, "support-agent", input=[{"role": "user", "content": QUESTION}], stream_mode="values"):
        if part.event == "values":
            values.append(part.data)
    assert [len(v) for v in values] == [1, 2]
    assert (await asdk.threads.get_state(tid))["next"] == ["action"]
    values = []
    async for part in asdk.runs.stream(tid, "support-agent", input=None, stream_mode="values"):
        if part.event == "values":
            values.append(part.data)
    assert _types(values[-1]) == ["human", "ai", "tool", "ai"]
    assert weather_answer(QUESTION) in values[-1][-1]["content"]
    runs = await asdk.runs.list(tid)
    assert [r["status"] for r in runs] == ["success", "interrupted"]
