"""Bad input is a clear error and loses nothing."""

from typing import Any, TypedDict

import pytest

from lgdist.checkpoint.memory import InMemorySaver
from lgdist.checkpoint.sqlite import SqliteSaver
from lgdist.errors import EmptyInputError, SerializationError
from lgdist.graph import END, START, StateGraph


class S(TypedDict):
    x: Any


class NotStorable:
    pass


@pytest.mark.parametrize("make_saver", [InMemorySaver, lambda: SqliteSaver.from_conn_string(":memory:")])
def test_non_serializable_state_value_names_the_key_and_keeps_the_last_checkpoint(make_saver):
    g = StateGraph(S)
    g.add_node("n", lambda s: {"x": NotStorable()})
    g.add_edge(START, "n")
    app = g.compile(checkpointer=make_saver())
    thread = {"configurable": {"thread_id": "bad"}}
    with pytest.raises(SerializationError, match="state key 'x'.*NotStorable"):
        app.invoke({"x": 1}, thread)
    state = app.get_state(thread)
    assert state.values == {"x": 1}
    assert state.next == ("n",)


def test_stream_none_on_a_thread_with_nothing_to_resume_is_an_error():
    g = StateGraph(S)
    g.add_node("n", lambda s: {})
    g.add_edge(START, "n")
    app = g.compile(checkpointer=InMemorySaver())
    with pytest.raises(EmptyInputError, match="Received no input"):
        list(app.stream(None, {"configurable": {"thread_id": "never-used"}}))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda g: (g.add_edge(START, "n"), g.add_edge("n", "ghost")), "unknown node `ghost`"),
        (lambda g: (g.add_edge(START, "n"), g.add_edge(END, "n")), "END cannot be a start node"),
        (lambda g: None, "must have an entrypoint"),
        (lambda g: (g.add_edge(START, "n"), g.add_edge("ghost", "n")), "unknown node 'ghost'"),
    ],
)
def test_malformed_graphs_fail_at_compile_with_a_clear_message(build, message):
    g = StateGraph(S)
    g.add_node("n", lambda s: {})
    with pytest.raises(ValueError, match=message):
        build(g)
        g.compile()
