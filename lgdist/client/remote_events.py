"""A remote run in the LangChain callback tree, rebuilt from its stream.

``RemoteGraph.astream`` with callback handlers (``astream_events`` adds
one) starts the graph's run here and feeds it the run's stream events: a
``debug`` task start opens the node's chain run (with LangGraph's metadata
and the ``graph:step:<n>`` tag), its task result streams the node's output
and ends it; a chat model's ``messages`` chunks open a chat model run under
the node's run, stream its tokens and end it with the whole message; a
``ToolMessage`` a node returned for a tool call in its input is that tool's
run. The handlers (``astream_events``' own, tracers) see these runs as they
see a local run's; what the stream does not carry (routers' runs, a chat
model's input messages and class name, runs inside subgraphs) is not
invented."""

from __future__ import annotations

from typing import Any, Optional

from langchain_core.messages import (
    AIMessageChunk,
    BaseMessage,
    BaseMessageChunk,
    ToolMessage,
    message_chunk_to_message,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult

from lgdist.errors import GraphInterrupt
from lgdist.run_tree import astart_graph_run, astream_output

# The stream modes the tree is built from.
TREE_MODES = ("debug", "messages", "values")
# A chat model's run in a node: the tag LangGraph gives a node's direct children.
_CHILD_TAG = "seq:step:1"
# Metadata values a local run has as tuples (JSON brings them back as lists).
_TUPLE_KEYS = ("langgraph_triggers", "langgraph_path")
_PUSH = "__pregel_push"
# What names a remote chat model's run (the stream does not carry its class).
CHAT_MODEL_RUN_NAME = "ChatModel"


def ends_a_step(mode: str, chunk: Any) -> bool:
    """Whether a root-graph event comes after its step's tasks all ended:
    any ``debug`` event but a task's result (the step's checkpoint, the
    next step's tasks)."""
    return mode == "debug" and isinstance(chunk, dict) and chunk.get("type") != "task_result"


def _node_metadata(step: int, task: dict, pushed: int) -> dict:
    """LangGraph's metadata of a node's run, from a ``debug`` task event;
    ``pushed``: how many Send (push) tasks of the step were announced before."""
    name, triggers = task["name"], tuple(task.get("triggers") or ())
    return {
        "langgraph_step": step,
        "langgraph_node": name,
        "langgraph_triggers": triggers,
        "langgraph_path": (_PUSH, pushed) if _PUSH in triggers else ("__pregel_pull", name),
        "langgraph_checkpoint_ns": f"{name}:{task['id']}",
    }


def _model_metadata(metadata: dict) -> dict:
    return {k: tuple(v) if k in _TUPLE_KEYS and isinstance(v, list) else v for k, v in metadata.items()}


def _task_id(metadata: dict) -> str:
    """The task a ``messages`` chunk came from (its checkpoint namespace's
    last part is ``<node>:<task id>``)."""
    last = str(metadata.get("langgraph_checkpoint_ns") or "").split("|")[-1]
    return last.partition(":")[2]


class _ChatRun:
    """One chat model call streamed by a node: its run and its chunks so far."""

    def __init__(self, run: Any, message_id: Optional[str]) -> None:
        self.run = run
        self.message_id = message_id
        self.message: Optional[BaseMessage] = None

    def add(self, message: BaseMessage) -> None:
        if self.message is None or not isinstance(message, BaseMessageChunk):
            self.message = message
        else:
            self.message = self.message + message  # type: ignore[operator]

    async def end(self) -> None:
        message = self.message if self.message is not None else AIMessageChunk(content="")
        if isinstance(message, BaseMessageChunk):
            message = message_chunk_to_message(message)
        await self.run.on_llm_end(LLMResult(generations=[[ChatGeneration(message=message)]]))


class _NodeRun:
    """A node's run, with its input (where its tool calls come from) and
    the chat model call it is streaming."""

    def __init__(self, run: Any, input: Any) -> None:
        self.run = run
        self.input = input
        self.chat: Optional[_ChatRun] = None

    def tool_call(self, tool_call_id: str) -> Optional[dict]:
        """The tool call with this id among the node's input messages."""
        values = self.input.values() if isinstance(self.input, dict) else [self.input]
        for value in values:
            for message in value if isinstance(value, list) else [value]:
                for call in getattr(message, "tool_calls", None) or []:
                    if call.get("id") == tool_call_id:
                        return call
        return None


class RemoteRunTree:
    """The callback runs of one remote run. Create with :meth:`start`."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.nodes: dict[str, _NodeRun] = {}
        self.pushed: dict[int, int] = {}  # step -> Send tasks announced so far
        self.output: Any = None

    @classmethod
    async def start(cls, config: dict, name: str, input: Any) -> Optional["RemoteRunTree"]:
        """The graph's run started, or ``None`` when no handler listens."""
        root = await astart_graph_run(config, name, input)
        return None if root is None else cls(root)

    async def feed(self, mode: str, chunk: Any) -> None:
        """One event of the remote run's own stream (not a subgraph's)."""
        if mode == "values":
            self.output = chunk
        elif mode == "debug" and isinstance(chunk, dict):
            if chunk.get("type") == "task":
                await self._task_started(chunk.get("step", 0), chunk["payload"])
            elif chunk.get("type") == "task_result":
                await self._task_finished(chunk["payload"])
        elif mode == "messages":
            await self._message(*chunk)

    async def _task_started(self, step: int, task: dict) -> None:
        manager = self.root.get_child()
        manager.add_tags([f"graph:step:{step}"], inherit=False)
        manager.add_metadata(_node_metadata(step, task, self.pushed.get(step, 0)))
        if _PUSH in (task.get("triggers") or ()):
            self.pushed[step] = self.pushed.get(step, 0) + 1
        run = await manager.on_chain_start(None, task.get("input"), name=task["name"])
        self.nodes[task["id"]] = _NodeRun(run, task.get("input"))

    async def _task_finished(self, task: dict) -> None:
        node = self.nodes.pop(task["id"], None)
        if node is None:
            return
        if node.chat is not None:
            await node.chat.end()
        if task.get("error"):
            await node.run.on_chain_error(RuntimeError(str(task["error"])))
            return
        if task.get("interrupts"):
            await node.run.on_chain_error(GraphInterrupt(task["interrupts"]))
            return
        result = task.get("result")
        output = result["__root__"] if isinstance(result, dict) and "__root__" in result else result
        await astream_output(node.run, output)
        await node.run.on_chain_end(output)

    async def _message(self, message: Any, metadata: dict) -> None:
        """A ``messages`` chunk: a chat model's token (or whole reply) joins
        its model's run; a tool's result a node returned (``ToolNode``)
        is its tool's run; other messages a node returned are no run."""
        node = self.nodes.get(_task_id(metadata or {}))
        if node is None or not isinstance(message, BaseMessage):
            return
        if "ls_model_type" in metadata:
            await self._model_message(node, message, metadata)
        elif isinstance(message, ToolMessage):
            await self._tool_message(node, message, metadata)

    async def _tool_message(self, node: _NodeRun, message: ToolMessage, metadata: dict) -> None:
        call = node.tool_call(message.tool_call_id)
        if call is None:
            return
        manager = node.run.get_child(_CHILD_TAG)
        manager.add_metadata({**_model_metadata(metadata), "checkpoint_ns": metadata.get("langgraph_checkpoint_ns")})
        args = call.get("args") or {}
        run = await manager.on_tool_start(None, str(args), name=message.name or call.get("name"), inputs=args)
        # The tool's own output, before its node gave it an id.
        await run.on_tool_end(message.model_copy(update={"id": None}))

    async def _model_message(self, node: _NodeRun, message: BaseMessage, metadata: dict) -> None:
        if node.chat is not None and message.id != node.chat.message_id:
            await node.chat.end()
            node.chat = None
        if node.chat is None:
            manager = node.run.get_child(_CHILD_TAG)
            manager.add_metadata(_model_metadata(metadata), inherit=False)
            runs = await manager.on_chat_model_start(None, [[]], name=CHAT_MODEL_RUN_NAME)
            node.chat = _ChatRun(runs[0], message.id)
        node.chat.add(message)
        if isinstance(message, BaseMessageChunk):
            text = message.content if isinstance(message.content, str) else ""
            await node.chat.run.on_llm_new_token(text, chunk=ChatGenerationChunk(message=message))

    async def end(self, output: Any = None) -> None:
        for node in list(self.nodes.values()):
            if node.chat is not None:
                await node.chat.end()
        self.nodes.clear()
        await self.root.on_chain_end(output if output is not None else self.output)

    async def fail(self, error: BaseException) -> None:
        for node in list(self.nodes.values()):
            if node.chat is not None:
                await node.chat.end()
            await node.run.on_chain_error(error)
        self.nodes.clear()
        await self.root.on_chain_error(error)
