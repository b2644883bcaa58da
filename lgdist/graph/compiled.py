"""``CompiledStateGraph``: a compiled graph as a LangChain ``Runnable`` with
LangGraph's state API (``get_state``, ``get_state_history``,
``update_state``)."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Iterator, Optional, Sequence, Union

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config

from lgdist.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from lgdist.constants import END, ERROR, INTERRUPT, NO_WRITES, PULL, RESUME, START
from lgdist.engine import apply_writes, channels_from_checkpoint, create_checkpoint, empty_checkpoint, plan_next_step
from lgdist.engine.checkpoint import copy_checkpoint
from lgdist.engine.execute import make_fresh_reader
from lgdist.engine.ids import task_id as make_task_id
from lgdist.engine.spec import GraphSpec
from lgdist.engine.task_context import TaskContext, reset_task_context, set_task_context
from lgdist.engine.tasks import Task
from lgdist.errors import InvalidUpdateError
from lgdist.local import events as ev
from lgdist.local.loop import DEFAULT_RECURSION_LIMIT, NULL_TASK_ID, ThreadLoop, _default_next_version
from lgdist.local.runner import stream_async, stream_sync
from lgdist.types import Interrupt, PregelTask, StateSnapshot

__all__ = ["CompiledStateGraph", "CompiledGraph"]

_USER_CONFIG_KEYS = ("thread_id", "checkpoint_ns", "checkpoint_id")


class CompiledStateGraph(Runnable):
    """A graph ready to run. Use it like any LangChain runnable."""

    def __init__(
        self,
        *,
        builder: Any,
        spec: GraphSpec,
        checkpointer: Optional[BaseCheckpointSaver] = None,
        store: Any = None,
        debug: bool = False,
        name: str = "LangGraph",
    ) -> None:
        self.builder = builder
        self.spec = spec
        self.checkpointer = checkpointer if isinstance(checkpointer, BaseCheckpointSaver) else None
        self.store = store
        self.debug = debug
        self.name = name
        self.stream_mode = "updates"

    # The distributed backend reads the spec by this name.
    def get_graph_spec(self) -> GraphSpec:
        return self.spec

    @property
    def nodes(self) -> dict:
        return {n: node.bound for n, node in self.spec.nodes.items()}

    @property
    def output_keys(self) -> Any:
        return self.spec.output_keys

    @property
    def stream_channels(self) -> Any:
        return self.spec.stream_keys

    # -- running ------------------------------------------------------------------
    def _loop(
        self,
        config: Optional[RunnableConfig],
        stream_mode: Any,
        interrupt_before: Any,
        interrupt_after: Any,
        output_keys: Any,
        debug: Optional[bool],
    ) -> tuple[ThreadLoop, list[str], bool]:
        # langchain's ensure_config() fills in its own default limit (25); only
        # a limit the caller set applies, else LangGraph's default.
        limit = (config or {}).get("recursion_limit", DEFAULT_RECURSION_LIMIT)
        config = ensure_config(config)
        config["recursion_limit"] = limit
        if limit < 1:
            raise ValueError("recursion_limit must be at least 1")
        if stream_mode is None:
            stream_mode = self.stream_mode
        single = isinstance(stream_mode, str)
        modes = [stream_mode] if single else list(dict.fromkeys(stream_mode))
        if debug or (debug is None and self.debug):
            modes = [*modes, "debug"] if "debug" not in modes else modes
        loop = ThreadLoop(
            self.spec,
            config,
            saver=self.checkpointer,
            stream_modes=modes,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            output_keys=output_keys,
        )
        return loop, modes, single

    def stream(
        self,
        input: Any,
        config: Optional[RunnableConfig] = None,
        *,
        stream_mode: Any = None,
        print_mode: Any = (),
        output_keys: Any = None,
        interrupt_before: Any = None,
        interrupt_after: Any = None,
        durability: Any = None,
        subgraphs: bool = False,
        debug: Optional[bool] = None,
        context: Any = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Run the graph, yielding chunks of the chosen stream mode(s)."""
        # Streams show every state key; invoke narrows to the output schema.
        output_keys = self.spec.stream_keys if output_keys is None else output_keys
        loop, modes, single = self._loop(config, stream_mode, interrupt_before, interrupt_after, output_keys, debug)
        requested = set([stream_mode] if isinstance(stream_mode, str) else (stream_mode or [self.stream_mode]))
        for mode, chunk in stream_sync(loop, input, context=context, store=self.store):
            if mode not in requested:
                continue
            yield _shape(mode, chunk, single, subgraphs)

    async def astream(
        self,
        input: Any,
        config: Optional[RunnableConfig] = None,
        *,
        stream_mode: Any = None,
        print_mode: Any = (),
        output_keys: Any = None,
        interrupt_before: Any = None,
        interrupt_after: Any = None,
        durability: Any = None,
        subgraphs: bool = False,
        debug: Optional[bool] = None,
        context: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        output_keys = self.spec.stream_keys if output_keys is None else output_keys
        loop, modes, single = self._loop(config, stream_mode, interrupt_before, interrupt_after, output_keys, debug)
        requested = set([stream_mode] if isinstance(stream_mode, str) else (stream_mode or [self.stream_mode]))
        async for mode, chunk in stream_async(loop, input, context=context, store=self.store):
            if mode not in requested:
                continue
            yield _shape(mode, chunk, single, subgraphs)

    def invoke(
        self,
        input: Any,
        config: Optional[RunnableConfig] = None,
        *,
        stream_mode: Any = "values",
        print_mode: Any = (),
        output_keys: Any = None,
        interrupt_before: Any = None,
        interrupt_after: Any = None,
        durability: Any = None,
        context: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Run the graph to its end (or an interrupt) and return the final
        values; an interrupted run's values carry ``__interrupt__``."""
        chunks = []
        latest = None
        interrupts: list = []
        for chunk in self.stream(
            input,
            config,
            stream_mode=["updates", "values"] if stream_mode == "values" else stream_mode,
            output_keys=self.spec.output_keys if output_keys is None else output_keys,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            context=context,
            **kwargs,
        ):
            if stream_mode == "values":
                mode, payload = chunk
                if mode == "values":
                    latest = payload
                elif isinstance(payload, dict) and INTERRUPT in payload:
                    interrupts.extend(payload[INTERRUPT])
            else:
                chunks.append(chunk)
        if stream_mode == "values":
            if interrupts and isinstance(latest, dict):
                return {**latest, INTERRUPT: interrupts}
            if interrupts and latest is None:
                return {INTERRUPT: interrupts}
            return latest
        return chunks

    async def ainvoke(
        self,
        input: Any,
        config: Optional[RunnableConfig] = None,
        *,
        stream_mode: Any = "values",
        output_keys: Any = None,
        interrupt_before: Any = None,
        interrupt_after: Any = None,
        context: Any = None,
        **kwargs: Any,
    ) -> Any:
        chunks = []
        latest = None
        interrupts: list = []
        async for chunk in self.astream(
            input,
            config,
            stream_mode=["updates", "values"] if stream_mode == "values" else stream_mode,
            output_keys=self.spec.output_keys if output_keys is None else output_keys,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            context=context,
            **kwargs,
        ):
            if stream_mode == "values":
                mode, payload = chunk
                if mode == "values":
                    latest = payload
                elif isinstance(payload, dict) and INTERRUPT in payload:
                    interrupts.extend(payload[INTERRUPT])
            else:
                chunks.append(chunk)
        if stream_mode == "values":
            if interrupts and isinstance(latest, dict):
                return {**latest, INTERRUPT: interrupts}
            if interrupts and latest is None:
                return {INTERRUPT: interrupts}
            return latest
        return chunks

    # -- state API ------------------------------------------------------------------
    def _require_saver(self) -> BaseCheckpointSaver:
        if self.checkpointer is None:
            raise ValueError("No checkpointer set")
        return self.checkpointer

    def _snapshot(self, saved: CheckpointTuple, *, live: bool = False) -> StateSnapshot:
        """``saved`` as a ``StateSnapshot``.

        A history entry (``live=False``) is the record of a step: the values
        it started from (plus a resume ``Command``'s update), every task of
        the step and every interrupt they raised. ``get_state`` is live: the
        values also hold what the step's finished tasks wrote, ``next`` and
        ``interrupts`` only what still has to run or be answered."""
        checkpoint = copy_checkpoint(saved.checkpoint)
        channels = channels_from_checkpoint(self.spec.channels, checkpoint)
        step = saved.metadata.get("step", -1) + 1
        tasks = plan_next_step(
            self.spec, checkpoint, channels, step,
            checkpoint_ns=saved.config["configurable"].get("checkpoint_ns", ""), read_inputs=False,
        )
        # A snapshot lists a step's tasks in graph order (the order nodes were
        # added, Send packets first), as LangGraph does; the step itself
        # runs them in name order.
        graph_order = {name: i for i, name in enumerate(self.spec.nodes)}
        tasks = dict(
            sorted(tasks.items(), key=lambda item: (item[1].path[0] == PULL, graph_order.get(item[1].name, 0)))
        )
        by_task: dict[str, list] = {}
        for tid, chan, value in saved.pending_writes or []:
            by_task.setdefault(tid, []).append((chan, value))
        next_version = self.checkpointer.get_next_version if self.checkpointer else _default_next_version
        null_writes = [(c, v) for c, v in by_task.get(NULL_TASK_ID, []) if c not in (INTERRUPT, ERROR, RESUME)]
        if null_writes:
            null_task = Task(NULL_TASK_ID, "__null__", (), None, (), None)  # type: ignore[arg-type]
            null_task.writes = null_writes
            apply_writes(checkpoint, channels, [null_task], next_version)
        keys = self.spec.stream_keys
        out_tasks = []
        finished: list[Task] = []
        for task in tasks.values():
            writes = by_task.get(task.id, [])
            interrupts = tuple(i for c, v in writes if c == INTERRUPT for i in v)
            error = next((v for c, v in writes if c == ERROR), None)
            result = None
            # A task finished when it saved some output (a state write or the
            # no-writes marker); interrupt/error/resume records alone do not count.
            if any(c not in (INTERRUPT, ERROR, RESUME) for c, _ in writes):
                task.writes = [(c, v) for c, v in writes if c not in (INTERRUPT, ERROR, RESUME, NO_WRITES)]
                finished.append(task)
                result = ev.task_update(task, keys) or {}
                if isinstance(keys, str):
                    result = {keys: result} if result is not None else {}
                if live:
                    interrupts = ()
            out_tasks.append(PregelTask(task.id, task.name, task.path, error, interrupts, None, result))
        if live and finished:
            apply_writes(checkpoint, channels, finished, next_version)
        return StateSnapshot(
            values=ev.read_values(channels, keys),
            next=tuple(t.name for t in tasks.values() if not (live and t in finished)),
            config=saved.config,
            metadata=saved.metadata,
            created_at=checkpoint.get("ts"),
            parent_config=saved.parent_config,
            tasks=tuple(out_tasks),
            interrupts=tuple(i for t in out_tasks for i in t.interrupts),
        )

    def get_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's state at its latest checkpoint (or ``checkpoint_id``)."""
        saver = self._require_saver()
        saved = saver.get_tuple(_user_config(config))
        if saved is None:
            return StateSnapshot({} if not isinstance(self.spec.output_keys, str) else [], (), config, None, None, None, (), ())
        # Asking for a given checkpoint gets its record; asking for the thread
        # gets where it stands now.
        return self._snapshot(saved, live="checkpoint_id" not in config.get("configurable", {}))

    def get_state_history(
        self,
        config: RunnableConfig,
        *,
        filter: Optional[dict] = None,
        before: Optional[RunnableConfig] = None,
        limit: Optional[int] = None,
    ) -> Iterator[StateSnapshot]:
        """The thread's checkpoints, newest first."""
        saver = self._require_saver()
        cfg = _user_config(config)
        for saved in saver.list(cfg, filter=filter, before=before, limit=limit):
            yield self._snapshot(saved)

    def update_state(
        self,
        config: RunnableConfig,
        values: Any,
        as_node: Optional[str] = None,
        task_id: Optional[str] = None,
    ) -> RunnableConfig:
        """Write ``values`` as if node ``as_node`` returned them; saves a new
        checkpoint (source ``update``) whose parent is ``config``'s."""
        saver = self._require_saver()
        return apply_update(self.spec, saver, _user_config(config), values, as_node)

    async def aget_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        return await asyncio.to_thread(self.get_state, config)

    async def aget_state_history(self, config: RunnableConfig, **kwargs: Any) -> AsyncIterator[StateSnapshot]:
        items = await asyncio.to_thread(lambda: list(self.get_state_history(config, **kwargs)))
        for item in items:
            yield item

    async def aupdate_state(self, config: RunnableConfig, values: Any, as_node: Optional[str] = None, task_id: Optional[str] = None) -> RunnableConfig:
        return await asyncio.to_thread(self.update_state, config, values, as_node)

    def get_graph(self, config: Optional[RunnableConfig] = None, *, xray: Any = False) -> Any:
        """A drawable ``langchain_core`` graph of the nodes and edges."""
        from lgdist.graph.drawing import draw_graph

        return draw_graph(self.builder)


CompiledGraph = CompiledStateGraph


def _user_config(config: RunnableConfig) -> RunnableConfig:
    configurable = dict(config.get("configurable") or {})
    return {"configurable": {k: configurable[k] for k in _USER_CONFIG_KEYS if k in configurable}}


def _shape(mode: str, chunk: Any, single: bool, subgraphs: bool) -> Any:
    if single:
        return ((), chunk) if subgraphs else chunk
    return ((), mode, chunk) if subgraphs else (mode, chunk)


def apply_update(
    spec: GraphSpec,
    saver: BaseCheckpointSaver,
    config: RunnableConfig,
    values: Any,
    as_node: Optional[str],
) -> RunnableConfig:
    """``update_state``'s rules, shared with the distributed backend."""
    saved = saver.get_tuple(config)
    if saved is not None:
        checkpoint = copy_checkpoint(saved.checkpoint)
        step = saved.metadata.get("step", -1)
        parent = saved.config
    else:
        checkpoint = empty_checkpoint()
        step = -1
        parent = {"configurable": {"thread_id": config["configurable"].get("thread_id"), "checkpoint_ns": config["configurable"].get("checkpoint_ns", "")}}
    saved_versions = dict(checkpoint["channel_versions"])
    channels = channels_from_checkpoint(spec.channels, checkpoint)
    user_nodes = [n for n in spec.nodes if n != START]
    if as_node is None:
        if len(user_nodes) == 1:
            as_node = user_nodes[0]
        elif saved is None:
            as_node = START
        else:
            latest: dict[str, str] = {
                n: max(seen.values())
                for n, seen in checkpoint["versions_seen"].items()
                if n in spec.nodes and seen
            }
            if not latest:
                as_node = START
            else:
                top = max(latest.values())
                names = [n for n, v in latest.items() if v == top]
                if len(names) > 1:
                    raise InvalidUpdateError("Ambiguous update, specify as_node")
                as_node = names[0]
    if as_node == END:
        raise InvalidUpdateError("update_state(as_node=END) is not supported")
    if as_node not in spec.nodes:
        raise InvalidUpdateError(f"Node {as_node} does not exist")
    node = spec.nodes[as_node]
    seen = checkpoint["versions_seen"].setdefault(as_node, {})
    for chan in node.triggers:
        if chan in checkpoint["channel_versions"]:
            seen[chan] = checkpoint["channel_versions"][chan]
    tid = make_task_id(checkpoint["id"], "", step + 1, as_node, "update")
    task = Task(tid, as_node, (PULL, as_node), None, (), node)
    ctx = TaskContext(task_id=tid, node=as_node, checkpoint_ns="", config=ensure_config(config))
    token = set_task_context(ctx)
    try:
        task.writes = node.write_output(values, make_fresh_reader(channels))
    finally:
        reset_task_context(token)
    next_version = saver.get_next_version if saver else _default_next_version
    updated = apply_writes(checkpoint, channels, [task], next_version)
    new = create_checkpoint(checkpoint, channels, updated_channels=updated)
    new_versions = {c: v for c, v in new["channel_versions"].items() if saved_versions.get(c) != v}
    metadata = {"source": "update", "step": step + 1, "parents": {}}
    return saver.put(parent, new, metadata, new_versions)
