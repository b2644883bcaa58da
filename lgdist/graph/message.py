"""The ``add_messages`` reducer and ``MessagesState``: a message list that
appends new messages, replaces messages by id and deletes on ``RemoveMessage``.

Same semantics as ``langgraph.graph.message`` (checked side by side in
``tests/graph/test_add_messages.py``)."""

import functools
import uuid
from typing import Annotated, Callable, Literal, Sequence, Union

from langchain_core.messages import (
    AnyMessage,
    BaseMessage,
    BaseMessageChunk,
    MessageLikeRepresentation,
    RemoveMessage,
    convert_to_messages,
    convert_to_openai_messages,
    message_chunk_to_message,
)
from typing_extensions import TypedDict

__all__ = [
    "REMOVE_ALL_MESSAGES",
    "Messages",
    "MessagesState",
    "add_messages",
]

REMOVE_ALL_MESSAGES = "__remove_all__"
"""``RemoveMessage(id=REMOVE_ALL_MESSAGES)`` drops every message before it."""

Messages = Union[list[MessageLikeRepresentation], MessageLikeRepresentation]
"""What either side of ``add_messages`` accepts: one message-like or a list."""

_FORMATS = ("langchain-openai", None)


def add_messages(
    left: Messages | None = None,
    right: Messages | None = None,
    *,
    format: Literal["langchain-openai"] | None = None,
) -> Union[list[BaseMessage], Callable[[Messages, Messages], list[BaseMessage]]]:
    """Merge ``right`` into ``left`` and return the new message list.

    - Message-likes are coerced: ``"hi"`` becomes a ``HumanMessage``,
      ``("ai", "yo")`` and ``{"role": ..., "content": ...}`` the matching
      message, chunks the full message.
    - Messages without an id get a uuid4 id (assigned on the message object
      itself, so the caller's message knows its id afterwards).
    - A right message whose id is already present replaces that message in
      place; otherwise it is appended.
    - ``RemoveMessage(id=x)`` deletes message ``x`` (``ValueError`` if no
      message has that id); ``RemoveMessage(id=REMOVE_ALL_MESSAGES)`` drops
      everything before it, left and right.
    - ``format="langchain-openai"`` converts the result to OpenAI-style
      content blocks (through ``convert_to_openai_messages``), which, as in
      LangGraph, leaves messages without ids.

    Called with neither ``left`` nor ``right`` (``add_messages(format=...)``)
    it returns the reducer with ``format`` bound, for use in ``Annotated``.
    """
    if left is None and right is None:
        return functools.partial(add_messages, format=format)
    if left is None or right is None:
        received = "left" if right is None else "right"
        raise ValueError(
            "Must specify non-null arguments for both 'left' and 'right'. "
            f"Only received: '{received}'."
        )
    if format not in _FORMATS:
        raise ValueError(
            f"Unrecognized {format=}. Expected one of 'langchain-openai', None."
        )

    left_messages = _coerce(left)
    right_messages = _coerce(right)
    for message in (*left_messages, *right_messages):
        if message.id is None:
            message.id = str(uuid.uuid4())

    merged = _merge(left_messages, right_messages)
    if format == "langchain-openai":
        return convert_to_messages(convert_to_openai_messages(merged))
    return merged


def _coerce(value: Messages) -> list[BaseMessage]:
    # Only a list is "many messages": a tuple is one message-like ("user", "hi").
    items = value if isinstance(value, list) else [value]
    # The state's history is already messages: converting it would give the
    # same objects, at a cost that grows with the conversation every step.
    if all(isinstance(m, BaseMessage) and not isinstance(m, BaseMessageChunk) for m in items):
        return items
    return [
        message_chunk_to_message(m) if isinstance(m, BaseMessageChunk) else m
        for m in convert_to_messages(items)
    ]


def _merge(left: Sequence[BaseMessage], right: Sequence[BaseMessage]) -> list[BaseMessage]:
    remove_all_at = _last_remove_all(right)
    if remove_all_at is not None:
        # Whatever follows the last remove-all is the whole new history, as given.
        return list(right[remove_all_at + 1 :])

    merged = list(left)
    position = {m.id: i for i, m in enumerate(merged)}  # later duplicates win
    removed: set[str] = set()
    # Right is applied in order, so a removal can be undone by a later message
    # with the same id, and a message added earlier in ``right`` can be removed.
    for message in right:
        at = position.get(message.id)
        if isinstance(message, RemoveMessage):
            if at is None:
                raise ValueError(
                    "Attempting to delete a message with an ID that doesn't exist "
                    f"('{message.id}')"
                )
            removed.add(message.id)  # type: ignore[arg-type]
        elif at is None:
            position[message.id] = len(merged)
            merged.append(message)
        else:
            removed.discard(message.id)  # type: ignore[arg-type]
            merged[at] = message
    return [m for m in merged if m.id not in removed] if removed else merged


def _last_remove_all(messages: Sequence[BaseMessage]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, RemoveMessage) and m.id == REMOVE_ALL_MESSAGES:
            return i
    return None


# A graph state with one key, ``messages``, merged by ``add_messages``. (No
# docstring: JSON schemas of graphs over it would carry it as their
# description, which LangGraph's do not.)
class MessagesState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
