"""The ``messages`` stream mode: LLM tokens (and node-emitted messages) as
``(message_chunk, metadata)`` tuples."""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Iterator, Optional
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage


class StreamMessagesHandler(BaseCallbackHandler):
    """A callback handler that forwards chat-model tokens from inside nodes."""

    run_inline = True

    def __init__(self, emit: Callable[[tuple], None]) -> None:
        self.emit = emit
        self.runs: dict[UUID, dict] = {}
        self.streamed: set[UUID] = set()
        self.seen: set[str] = set()

    # Having these two methods makes the handler a langchain "streaming
    # handler" (a runtime-checkable protocol): a chat model's invoke() inside
    # a node then streams, so "messages" mode gets tokens, as in LangGraph.
    def tap_output_iter(self, run_id: UUID, output: Iterator[Any]) -> Iterator[Any]:
        yield from output

    async def tap_output_aiter(self, run_id: UUID, output: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for chunk in output:
            yield chunk

    def _metadata(self, metadata: Optional[dict]) -> Optional[dict]:
        if not metadata or "langgraph_node" not in metadata:
            return None
        return dict(metadata)

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs):  # type: ignore[override]
        meta = self._metadata(metadata)
        if meta is not None and "nostream" not in (tags or []):
            self.runs[run_id] = meta

    def on_llm_new_token(self, token: str, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        meta = self.runs.get(run_id)
        if meta is None or chunk is None:
            return
        message = getattr(chunk, "message", None)
        if isinstance(message, BaseMessage):
            self.streamed.add(run_id)
            if message.id:
                self.seen.add(message.id)
            self.emit((message, meta))

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        meta = self.runs.pop(run_id, None)
        if meta is None:
            return
        if run_id in self.streamed:
            self.streamed.discard(run_id)
            return
        for generations in response.generations:
            for gen in generations:
                message = getattr(gen, "message", None)
                if isinstance(message, BaseMessage):
                    self.emit_message(message, meta)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.pop(run_id, None)
        self.streamed.discard(run_id)

    def emit_message(self, message: BaseMessage, meta: dict) -> None:
        if message.id and message.id in self.seen:
            return
        if message.id:
            self.seen.add(message.id)
        self.emit((message, meta))

    def emit_node_output(self, value: Any, meta: dict) -> None:
        """Messages a node returned without streaming them (tool results...)."""
        for message in _messages_in(value):
            self.emit_message(message, meta)

    def mark_seen(self, value: Any) -> None:
        for message in _messages_in(value):
            if message.id:
                self.seen.add(message.id)


def _messages_in(value: Any) -> list[BaseMessage]:
    if isinstance(value, BaseMessage):
        return [value]
    if isinstance(value, (list, tuple)):
        return [m for m in value if isinstance(m, BaseMessage)]
    if isinstance(value, dict):
        out: list[BaseMessage] = []
        for v in value.values():
            out.extend(_messages_in(v) if isinstance(v, (list, tuple, BaseMessage)) else [])
        return out
    return []
