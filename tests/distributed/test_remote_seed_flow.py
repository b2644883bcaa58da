"""The seed program's flow on real workers: stream until the breakpoint
before ``action``, resume with a plain Celery message, get the answer."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from lgdist.client import RemoteGraph
from lgdist.testing import weather_answer

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(90)]

QUESTION = "what is the weather in sf currently"


def test_seed_flow_pauses_before_action_and_a_bare_resume_message_finishes_it(cluster, celery_app):
    graph = RemoteGraph("support-agent")  # configured from LGDIST_* like any program
    thread_id = cluster.thread_id("seed")
    thread = {"configurable": {"thread_id": thread_id}}

    events = list(graph.stream([HumanMessage(content=QUESTION)], thread, stream_mode="values"))

    assert [len(e) for e in events] == [1, 2]
    assert events[-1][-1].tool_calls[0]["name"] == "search"
    paused = graph.get_state(thread)
    assert paused.next == ("action",)
    assert cluster.thread_status(thread_id) == "interrupted"

    # Any program that can publish a Celery message can resume the thread.
    result = celery_app.send_task("lgdist.resume", kwargs={"v": 1, "thread_id": thread_id}).get(timeout=30)
    assert result["status"] == "started", result
    resumed = list(graph.client.stream_run(result["run_id"], stream_mode="values", timeout=30))

    final = resumed[-1][-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert weather_answer(QUESTION) in final.content
    assert cluster.wait_run(result["run_id"])["status"] == "success"
    state = graph.get_state(thread)
    assert state.next == ()
    assert [type(m) for m in state.values] == [HumanMessage, AIMessage, ToolMessage, AIMessage]

    history = cluster.history("support-agent", thread_id)
    assert len(history) == 5
    assert [s.metadata["step"] for s in history] == [-1, 0, 1, 2, 3]
    cluster.assert_linear_history(history)
    cluster.assert_thread_sound(thread_id)
