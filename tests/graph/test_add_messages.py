"""``add_messages`` behaves like ``langgraph.graph.message.add_messages``.

LangGraph is the test-only oracle: every case runs through both reducers and
the results are compared field by field. Ids LangGraph and lgdist generate
(uuid4) necessarily differ, so generated ids are compared by position only."""

import random
import uuid
from typing import Any, Callable, get_type_hints

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langgraph.graph import message as lg_message

from lgdist.graph.message import REMOVE_ALL_MESSAGES, MessagesState, add_messages


def _is_generated(message_id: Any) -> bool:
    try:
        return uuid.UUID(str(message_id)).version == 4
    except ValueError:
        return False


def _normalize(messages: list[BaseMessage]) -> list[dict]:
    """Dump messages, replacing generated uuid4 ids with a placeholder."""
    dumped = []
    for m in messages:
        data = m.model_dump()
        data["__class__"] = type(m).__name__
        if _is_generated(data.get("id")):
            data["id"] = "<generated>"
        dumped.append(data)
    return dumped


def _outcome(reducer: Callable[..., Any], left: Any, right: Any, **kwargs: Any) -> Any:
    try:
        return ("ok", _normalize(reducer(left, right, **kwargs)))
    except Exception as exc:  # the oracle's error is part of the behaviour
        return ("error", type(exc).__name__, str(exc))


def _fresh(value: Any) -> Any:
    """Deep-copy message objects: both reducers assign ids in place."""
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    if isinstance(value, BaseMessage):
        return value.model_copy(deep=True)
    return value


def assert_same_as_langgraph(left: Any, right: Any, **kwargs: Any) -> None:
    expected = _outcome(lg_message.add_messages, _fresh(left), _fresh(right), **kwargs)
    actual = _outcome(add_messages, _fresh(left), _fresh(right), **kwargs)
    assert actual == expected


def H(content: str, id: str | None = None) -> HumanMessage:
    return HumanMessage(content, id=id)


CASES = {
    "append_new_ids": ([H("a", "1")], [AIMessage("b", id="2")]),
    "append_without_ids": ([H("a")], [AIMessage("b")]),
    "string_and_tuple_coerced": ("hi", ("ai", "yo")),
    "dict_coerced": ([], {"role": "user", "content": "x"}),
    "list_form_coerced": ([H("a", "1")], [["user", "hi"]]),
    "dict_with_id_replaces": ([H("a", "1")], [{"role": "user", "content": "hi", "id": "1"}]),
    "replace_in_place": ([H("a", "1"), AIMessage("b", id="2")], [H("c", "1")]),
    "replace_and_remove": (
        [H("a", "1"), AIMessage("b", id="2")],
        [H("c", "1"), RemoveMessage(id="2")],
    ),
    "remove_unknown_id_raises": ([H("a", "1")], [RemoveMessage(id="x")]),
    "remove_before_add_raises": ([H("a", "1")], [RemoveMessage(id="2"), H("b", "2")]),
    "remove_message_added_in_same_update": ([H("a", "1")], [H("c", "3"), RemoveMessage(id="3")]),
    "removal_undone_by_later_message": ([H("a", "1")], [RemoveMessage(id="1"), H("c", "1")]),
    "duplicate_ids_in_right_keep_first_position": (
        [H("a", "1")],
        [H("b", "2"), H("d", "4"), H("c", "2")],
    ),
    "duplicate_ids_in_left_all_removed": ([H("a", "1"), H("a2", "1")], [RemoveMessage(id="1")]),
    "duplicate_ids_in_left_last_replaced": ([H("a", "1"), H("a2", "1")], [H("b", "1")]),
    "remove_all": ([H("a", "1")], [H("q", "0"), RemoveMessage(id=REMOVE_ALL_MESSAGES), H("z", "9")]),
    "remove_all_last_wins": (
        [H("a", "1")],
        [H("b", "2"), RemoveMessage(id=REMOVE_ALL_MESSAGES), H("c", "3"),
         RemoveMessage(id=REMOVE_ALL_MESSAGES), H("d", "4")],
    ),
    "after_remove_all_taken_verbatim": (
        [H("a", "1")],
        [RemoveMessage(id=REMOVE_ALL_MESSAGES), H("b", "2"), H("c", "2"), RemoveMessage(id="x")],
    ),
    "remove_unknown_before_remove_all_ignored": (
        [H("a", "1")],
        [RemoveMessage(id="9"), RemoveMessage(id=REMOVE_ALL_MESSAGES)],
    ),
    "remove_messages_in_left_kept": ([H("a", "1"), RemoveMessage(id="1")], []),
    "single_messages_both_sides": (H("a", "1"), H("b", "2")),
    "chunks_become_messages": ([AIMessageChunk("a", id="1")], [AIMessageChunk("b", id="2")]),
    "empty_string_id_is_an_id": ([H("a", "")], [H("b", "")]),
    "tool_calls_kept": (
        [H("q", "1")],
        [AIMessage("", id="2", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c"}]),
         ToolMessage("r", tool_call_id="c", id="3")],
    ),
    "unsupported_type_raises": ([1], [2]),
    "empty_both": ([], []),
}


@pytest.mark.parametrize("left,right", list(CASES.values()), ids=list(CASES))
def test_add_messages_matches_langgraph(left: Any, right: Any) -> None:
    assert_same_as_langgraph(left, right)


def test_openai_format_matches_langgraph() -> None:
    left = [
        SystemMessage("sys", id="s"),
        HumanMessage(
            [{"type": "text", "text": "hi"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}],
            id="1",
            name="bob",
        ),
    ]
    right = [
        AIMessage([{"type": "text", "text": "a"}], id="2",
                  tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c"}]),
        ToolMessage([{"type": "text", "text": "hi"}], tool_call_id="c", id="3", status="error"),
        "plain",
    ]
    assert_same_as_langgraph(left, right, format="langchain-openai")


def test_unknown_format_raises_like_langgraph() -> None:
    assert_same_as_langgraph([H("a", "1")], "x", format="bad")


def test_format_bound_reducer_via_keyword_only_call() -> None:
    reducer = add_messages(format="langchain-openai")
    assert _normalize(reducer([H("a", "1")], "x")) == _normalize(
        lg_message.add_messages(format="langchain-openai")([H("a", "1")], "x")
    )


def test_one_missing_side_raises() -> None:
    with pytest.raises(ValueError, match="Only received: 'right'"):
        add_messages(None, [H("b", "2")])
    with pytest.raises(ValueError, match="Only received: 'left'"):
        add_messages([H("a", "1")], None)


def test_ids_are_assigned_on_the_callers_message_objects() -> None:
    left_message, right_message = H("a"), H("b")
    result = add_messages([left_message], right_message)
    assert _is_generated(left_message.id) and _is_generated(right_message.id)
    assert result[0] is left_message and result[1] is right_message


def test_left_list_is_not_mutated() -> None:
    left = [H("a", "1")]
    add_messages(left, [H("b", "1"), H("c", "2")])
    assert [m.content for m in left] == ["a"]


def test_messages_state_uses_add_messages_reducer() -> None:
    hint = get_type_hints(MessagesState, include_extras=True)["messages"]
    assert hint.__metadata__ == (add_messages,)


def test_random_histories_match_langgraph() -> None:
    """Fuzz: random mixes of new, replacing and removing messages."""
    rng = random.Random(1234)

    def message(side: str) -> Any:
        kind = rng.random()
        mid = rng.choice(["1", "2", "3", "4", None])
        if side == "right" and kind < 0.25:
            return RemoveMessage(id=rng.choice(["1", "2", "3", "4", "9"]))
        if side == "right" and kind < 0.3:
            return RemoveMessage(id=REMOVE_ALL_MESSAGES)
        if kind < 0.4:
            return rng.choice(["hello", ("ai", "hey"), {"role": "system", "content": "s"}])
        cls = rng.choice([HumanMessage, AIMessage, SystemMessage])
        return cls(f"m{rng.randint(0, 99)}", id=mid)

    for _ in range(400):
        left = [message("left") for _ in range(rng.randint(0, 5))]
        right = [message("right") for _ in range(rng.randint(0, 5))]
        assert_same_as_langgraph(left, right)
