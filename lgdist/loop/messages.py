"""The ``messages`` stream mode: LLM tokens (and node-emitted messages) as
``(message_chunk, metadata)`` tuples."""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Iterator, Optional
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage

from lgdist.engine.namespace import graph_namespace_of_task


class StreamMessagesHandler(BaseCallbackHandler):
    """A callback handler that forwards chat-model tokens from inside nodes.

    Subgraphs inherit it with the callbacks. ``emit((message, metadata),
    namespace)`` gets the namespace of the graph the node runs in; runs in
    subgraphs of ``namespace`` are forwarded only when ``subgraphs`` is set
    (``stream(..., subgraphs=True)``)."""

    run_inline = True

    def __init__(
        self, emit: Callable[[tuple, tuple], None], *, subgraphs: bool = False, namespace: tuple = ()
    ) -> None:
        self.emit = emit
        self.subgraphs = subgraphs
        self.namespace = namespace
        self.runs: dict[UUID, tuple[tuple, dict]] = {}
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

    def _wanted(self, metadata: Optional[dict]) -> Optional[tuple[tuple, dict]]:
        """``(namespace, metadata)`` of a run inside a node this stream
        reports, else ``None``."""
        if not metadata or "langgraph_node" not in metadata:
            return None
        ns = graph_namespace_of_task(metadata.get("langgraph_checkpoint_ns") or "")
        if ns != self.namespace and not self.subgraphs:
            return None
        return ns, dict(metadata)

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs):  # type: ignore[override]
        wanted = self._wanted(metadata)
        if wanted is not None and "nostream" not in (tags or []):
            self.runs[run_id] = wanted

    def on_llm_new_token(self, token: str, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        wanted = self.runs.get(run_id)
        if wanted is None or chunk is None:
            return
        message = getattr(chunk, "message", None)
        if isinstance(message, BaseMessage):
            self.streamed.add(run_id)
            if message.id:
                self.seen.add(message.id)
            self.emit((message, wanted[1]), wanted[0])

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        wanted = self.runs.pop(run_id, None)
        if wanted is None:
            return
        if run_id in self.streamed:
            self.streamed.discard(run_id)
            return
        for generations in response.generations:
            for gen in generations:
                message = getattr(gen, "message", None)
                if isinstance(message, BaseMessage):
                    self._emit_message(message, wanted)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.pop(run_id, None)
        self.streamed.discard(run_id)

    def _emit_message(self, message: BaseMessage, wanted: tuple[tuple, dict]) -> None:
        if message.id and message.id in self.seen:
            return
        if message.id:
            self.seen.add(message.id)
        self.emit((message, wanted[1]), wanted[0])

    def emit_node_output(self, value: Any, meta: dict) -> None:
        """Messages a node returned without streaming them (tool results...)."""
        wanted = self._wanted(meta)
        if wanted is None:
            return
        for message in _messages_in(value):
            self._emit_message(message, wanted)

    def on_task_start(self, value: Any, meta: dict) -> None:
        """A node starts: the messages in its input are not news."""
        if self._wanted(meta) is not None:
            self.mark_seen(value)

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
