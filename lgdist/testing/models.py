"""``ScriptedChatModel``: an offline, deterministic chat model for demos and tests.

It stands in for the hosted model of LangGraph's README agent: asked a
question it calls the first bound tool with the question; given the tool's
answer it replies with it. Every id it makes (message ids, tool call ids) is a
hash of the conversation, so the same run gives the same transcript on every
machine — which is what lets distributed runs be compared with local ones."""

import hashlib
import json
import re
import threading
from typing import Any, Callable, Iterator, Optional, Sequence, Union

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr

from lgdist.errors import ScriptExhaustedError

__all__ = ["ScriptedChatModel", "ScriptExhaustedError", "build_seed_model"]


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers from a script, or by a fixed rule.

    - ``ScriptedChatModel(responses=[AIMessage(...), "text", ...])`` returns
      the responses in order, one per call (strings become ``AIMessage``s).
      When they run out it raises ``ScriptExhaustedError``, or starts over
      with ``cycle=True``.
    - Without ``responses`` it plays the README agent: if the last message is
      from the user, it calls the first tool given to ``bind_tools`` with the
      question as the tool's first argument; if the last messages are tool
      results, it answers ``"Based on the search: <results>"``; with no tools
      bound it answers ``"You said: <question>"``.

    Streaming yields the reply word by word (tool calls in the last chunk),
    so ``stream_mode="messages"`` sees tokens. Ids are
    ``run-scripted-<hash>`` and ``call_<hash>``, derived from the conversation.
    """

    responses: Optional[list[Union[BaseMessage, str]]] = None
    cycle: bool = False

    _cursor: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"responses": len(self.responses or ()), "cycle": self.cycle}

    def bind_tools(
        self,
        tools: Sequence[Union[dict[str, Any], type, Callable[..., Any], BaseTool]],
        *,
        tool_choice: Optional[Union[str, dict[str, Any]]] = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Return this model bound to ``tools`` (OpenAI tool schemas, recorded
        in the binding's ``kwargs["tools"]``)."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._reply(messages, kwargs.get("tools") or [])
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._reply(messages, kwargs.get("tools") or [])
        # BaseChatModel reports each chunk to the callbacks (on_llm_new_token)
        # itself; doing it here too would send every token twice.
        for chunk in _chunks_of(reply):
            yield ChatGenerationChunk(message=chunk)

    # -- choosing the reply ------------------------------------------------

    def _reply(self, messages: list[BaseMessage], tools: list[dict[str, Any]]) -> AIMessage:
        if self.responses is not None:
            return self._next_scripted(messages)
        return _rule_based_reply(messages, tools)

    def _next_scripted(self, messages: list[BaseMessage]) -> AIMessage:
        # Graph nodes may call the model from several threads at once.
        with self._lock:
            position = self._cursor
            if position >= len(self.responses or ()):
                if not self.cycle or not self.responses:
                    raise ScriptExhaustedError(
                        f"ScriptedChatModel has no response left: all {len(self.responses or ())} "
                        "scripted responses were used. Pass more responses, or cycle=True "
                        "to start over."
                    )
                position = 0
            self._cursor = position + 1
        item = self.responses[position]  # type: ignore[index]
        reply = AIMessage(content=item) if isinstance(item, str) else item
        if not isinstance(reply, AIMessage):
            raise TypeError(
                f"scripted response {position} is a {type(reply).__name__}; "
                "use an AIMessage or a string"
            )
        if reply.id is None:
            digest = _digest(messages, position, reply.content, reply.tool_calls)
            reply = reply.model_copy(update={"id": f"run-scripted-{digest[:12]}"})
        return reply.model_copy(deep=True)


def _rule_based_reply(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> AIMessage:
    if not messages:
        raise ValueError("ScriptedChatModel needs at least one message")
    digest = _digest(messages)
    message_id = f"run-scripted-{digest[:12]}"
    tool_results = _trailing_tool_results(messages)
    if tool_results:
        answer = "Based on the search: " + " ".join(tool_results)
        return AIMessage(content=answer, id=message_id)
    question = _last_question(messages)
    if isinstance(messages[-1], HumanMessage) and tools:
        function = tools[0]["function"]
        properties = list(function.get("parameters", {}).get("properties", {})) or ["query"]
        call = {
            "name": function["name"],
            "args": {properties[0]: question},
            "id": f"call_{digest[:12]}",
            "type": "tool_call",
        }
        return AIMessage(content="", tool_calls=[call], id=message_id)
    return AIMessage(content=f"You said: {question}", id=message_id)


def _trailing_tool_results(messages: list[BaseMessage]) -> list[str]:
    """Texts of the tool messages after the last AI message, in order."""
    results: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.append(_tool_result_text(message))
    return list(reversed(results))


def _tool_result_text(message: ToolMessage) -> str:
    text = str(message.text)
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    # Tavily-style results: [{"url": ..., "content": ...}, ...]
    if isinstance(parsed, list) and all(isinstance(r, dict) and "content" in r for r in parsed):
        return " ".join(str(r["content"]) for r in parsed)
    return text


def _last_question(messages: list[BaseMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return str(message.text)
    return str(messages[-1].text)


def _digest(messages: Sequence[BaseMessage], *extra: Any) -> str:
    # Message ids are left out: add_messages gives new messages random ids,
    # and the same conversation must hash the same on every run.
    payload = [
        [m.type, m.content, getattr(m, "tool_calls", None), getattr(m, "tool_call_id", None)]
        for m in messages
    ]
    blob = json.dumps([payload, list(extra)], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _chunks_of(reply: AIMessage) -> Iterator[AIMessageChunk]:
    """Split ``reply`` into word chunks whose sum equals ``reply``."""
    content = reply.content
    words = re.split(r"(?<=\s)(?=\S)", content) if isinstance(content, str) else [content]
    words = [w for w in words if w] or [""]
    tool_call_chunks = [
        {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
        for i, c in enumerate(reply.tool_calls)
    ]
    for i, word in enumerate(words):
        last = i == len(words) - 1
        yield AIMessageChunk(
            content=word,
            id=reply.id,
            name=reply.name,
            tool_call_chunks=tool_call_chunks if last else [],
            additional_kwargs=reply.additional_kwargs if last else {},
            response_metadata=reply.response_metadata if last else {},
            usage_metadata=reply.usage_metadata if last else None,
            chunk_position="last" if last else None,
        )


def build_seed_model() -> ScriptedChatModel:
    """The model for the README's seed demo (weather question → search → answer)."""
    return ScriptedChatModel()
