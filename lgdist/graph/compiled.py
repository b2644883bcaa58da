"""``CompiledStateGraph``: a compiled graph as a LangChain ``Runnable`` with
LangGraph's state API (``get_state``, ``get_state_history``,
``update_state``).

A compiled graph used as a node, or invoked from inside a node, is a
subgraph: it runs with its parent's checkpointer under the task's checkpoint
namespace (see :mod:`lgdist.graph.nesting`), its interrupts stop the parent,
and ``stream(..., subgraphs=True)`` shows its chunks under that namespace.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Iterator, Optional, Sequence

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config

from lgdist.checkpoint.base import BaseCheckpointSaver
from lgdist.constants import INTERRUPT
from lgdist.engine.namespace import recast_namespace, with_checkpoint_map
from lgdist.engine.spec import GraphSpec
from lgdist.engine.task_context import maybe_task_context
from lgdist.errors import GraphInterrupt
from lgdist.graph.drawing import draw_graph
from lgdist.graph.json_schema import context_jsonschema, output_model, state_jsonschema
from lgdist.graph.nesting import nested_saver_and_config
from lgdist.graph.snapshot import build_snapshot, empty_snapshot
from lgdist.local import stream_async, stream_sync
from lgdist.graph.update import apply_update
from lgdist.loop import DEFAULT_RECURSION_LIMIT, ThreadLoop
from lgdist.loop.events import read_values
from lgdist.run_tree import astart_graph_run, start_graph_run
from lgdist.runtime import coerce_context
from lgdist.types import StateSnapshot

__all__ = ["CompiledStateGraph", "CompiledGraph"]

_USER_CONFIG_KEYS = ("thread_id", "checkpoint_ns", "checkpoint_id")
_STOPPED = ("interrupted", "interrupt_before", "interrupt_after")


class CompiledStateGraph(Runnable):
    """A graph ready to run. Use it like any LangChain runnable."""

    def __init__(
        self,
        *,
        builder: Any,
        spec: GraphSpec,
        checkpointer: Any = None,
        store: Any = None,
        debug: bool = False,
        name: str = "LangGraph",
    ) -> None:
        self.builder = builder
        self.spec = spec
        # None (a subgraph inherits its parent's), a saver, True (a subgraph
        # keeps one history per thread) or False (a subgraph keeps none).
        self.checkpointer_option = checkpointer
        self.checkpointer = checkpointer if isinstance(checkpointer, BaseCheckpointSaver) else None
        self.store = store
        self.debug = debug
        self.name = name
        self.stream_mode = "updates"

    @property
    def cache(self) -> Any:
        """The cache of the nodes with a ``cache_policy`` (``compile(cache=...)``)."""
        return self.spec.cache

    def _cache_namespaces(self, nodes: Optional[Sequence[str]]) -> list:
        if self.spec.cache is None:
            raise ValueError("No cache is set for this graph. Cannot clear cache.")
        from lgdist.cache.keys import node_namespace

        return [
            node_namespace(name, self.spec.nodes[name].bound)
            for name in (nodes or self.spec.nodes.keys())
            if name in self.spec.nodes
        ]

    def clear_cache(self, nodes: Optional[Sequence[str]] = None) -> None:
        """Forget the cached writes of ``nodes`` (default: every node)."""
        namespaces = self._cache_namespaces(nodes)
        self.spec.cache.clear(namespaces)

    async def aclear_cache(self, nodes: Optional[Sequence[str]] = None) -> None:
        """Async :meth:`clear_cache`."""
        namespaces = self._cache_namespaces(nodes)
        await self.spec.cache.aclear(namespaces)

    @property
    def context_schema(self) -> Any:
        return getattr(self.builder, "context_schema", None)

    def get_context_jsonschema(self) -> Optional[dict]:
        """The JSON schema of ``context_schema`` (None without one)."""
        return context_jsonschema(self.context_schema)

    def get_input_jsonschema(self, config: Optional[RunnableConfig] = None) -> dict:
        """The JSON schema of the graph's input (its ``input_schema``, else
        its state schema)."""
        return state_jsonschema(
            self.builder.input_schema, self.get_name("Input"), root_type=getattr(self.builder, "root_type", None)
        )

    def get_output_jsonschema(self, config: Optional[RunnableConfig] = None) -> dict:
        """The JSON schema of the graph's output (its ``output_schema``,
        else its state schema)."""
        return state_jsonschema(
            self.builder.output_schema, self.get_name("Output"), root_type=getattr(self.builder, "root_type", None)
        )

    @property
    def InputType(self) -> Any:  # noqa: N802 - Runnable's name
        """What the graph takes: its input schema (Runnable builds
        ``get_input_schema()`` from it)."""
        return self.builder.input_schema or getattr(self.builder, "root_type", None) or Any

    @property
    def OutputType(self) -> Any:  # noqa: N802 - Runnable's name
        """The root value's type for a one-value graph (MessageGraph); None
        for a graph of keys (its output schema is a model of them)."""
        if isinstance(self.spec.output_keys, str):
            return getattr(self.builder, "root_type", None) or Any
        return None

    def get_output_schema(self, config: Optional[RunnableConfig] = None) -> Any:
        """A pydantic model of the output keys (each optional)."""
        if isinstance(self.spec.output_keys, str):
            return super().get_output_schema(config)
        return output_model(self.get_name("Output"), self.builder.channels, self.spec.output_keys)

    def _run_context(self, context: Any) -> tuple[Any, Any]:
        """The context and store this run's nodes see: a graph run inside a
        task (a subgraph) inherits its parent's unless given its own; the
        context is coerced to ``context_schema``."""
        parent = maybe_task_context()
        inherited = parent.runtime if parent is not None else None
        if context is None and inherited is not None:
            context = inherited.context
        store = self.store if self.store is not None else getattr(inherited, "store", None)
        return coerce_context(self.context_schema, context), store

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
        subgraphs: bool = False,
        durability: Any = None,
    ) -> tuple[ThreadLoop, set[str], bool]:
        # langchain's ensure_config() fills in its own default limit (25); only
        # a limit the caller set applies, else LangGraph's default.
        limit = (config or {}).get("recursion_limit", DEFAULT_RECURSION_LIMIT)
        config = ensure_config(config)
        config["recursion_limit"] = limit
        _propagate_to_metadata(config)
        if limit < 1:
            raise ValueError("recursion_limit must be at least 1")
        if stream_mode is None:
            stream_mode = self.stream_mode
        single = isinstance(stream_mode, str)
        requested = [stream_mode] if single else list(dict.fromkeys(stream_mode))
        modes = list(requested)
        if debug or (debug is None and self.debug):
            modes = [*modes, "debug"] if "debug" not in modes else modes
        # A graph invoked while a task runs is that task's subgraph.
        parent = maybe_task_context()
        if parent is None:
            if self.checkpointer_option is True:
                raise RuntimeError("checkpointer=True cannot be used for root graphs.")
            saver = self.checkpointer
        else:
            saver, config = nested_saver_and_config(self.checkpointer_option, parent, config)
            # Produce what the root stream wants from subgraphs, too.
            modes += [m for m in sorted(parent.sink_modes) if m not in modes]
        loop = ThreadLoop(
            self.spec,
            config,
            saver=saver,
            stream_modes=modes,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            output_keys=output_keys,
            parent=parent,
            stream_subgraphs=subgraphs,
            durability=durability if parent is None else None,
        )
        return loop, set(requested), single

    def _deliver(self, loop: ThreadLoop, item: tuple, requested: set[str], single: bool, subgraphs: bool) -> Iterator[Any]:
        """Route one outbox item: a subgraph's own chunk also goes to the
        root stream (when it asked for subgraphs); the caller gets what it
        requested, namespaced relative to this graph."""
        mode, chunk = item[0], item[1]
        ns = item[2] if len(item) > 2 else loop.namespace
        if loop.parent is not None and loop.sink is not None and mode in loop.sink_modes:
            loop.sink(ns, mode, chunk)
        if mode not in requested:
            return
        relative = ns[len(loop.namespace):]
        if relative and not subgraphs:
            return
        yield _shape(mode, chunk, single, subgraphs, relative)

    @staticmethod
    def _raise_if_subgraph_stopped(loop: ThreadLoop) -> None:
        # A subgraph's interrupt (or breakpoint) stops the task that runs it.
        if loop.parent is not None and loop.status in _STOPPED:
            raise GraphInterrupt(loop.interrupts)

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
        """Run the graph, yielding chunks of the chosen stream mode(s);
        with ``subgraphs=True`` as ``(namespace, chunk)`` /
        ``(namespace, mode, chunk)``, subgraph chunks included."""
        # Streams show every state key; invoke narrows to the output schema.
        output_keys = self.spec.stream_keys if output_keys is None else output_keys
        loop, requested, single = self._loop(
            config, stream_mode, interrupt_before, interrupt_after, output_keys, debug, subgraphs, durability
        )
        context, store = self._run_context(context)
        run = start_graph_run(loop.config, self.name, input)
        if run is not None:
            loop.config["callbacks"] = run.get_child()
        try:
            for item in stream_sync(loop, input, context=context, store=store):
                yield from self._deliver(loop, item, requested, single, subgraphs)
            self._raise_if_subgraph_stopped(loop)
        except BaseException as exc:
            if run is not None:
                run.on_chain_error(exc)
            raise
        if run is not None:
            run.on_chain_end(_run_output(loop))

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
        loop, requested, single = self._loop(
            config, stream_mode, interrupt_before, interrupt_after, output_keys, debug, subgraphs, durability
        )
        context, store = self._run_context(context)
        run = await astart_graph_run(loop.config, self.name, input)
        if run is not None:
            loop.config["callbacks"] = run.get_child()
        try:
            async for item in stream_async(loop, input, context=context, store=store):
                for out in self._deliver(loop, item, requested, single, subgraphs):
                    yield out
            self._raise_if_subgraph_stopped(loop)
        except BaseException as exc:
            if run is not None:
                await run.on_chain_error(exc)
            raise
        if run is not None:
            await run.on_chain_end(_run_output(loop))

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
        result = _InvokeResult(stream_mode)
        for chunk in self.stream(
            input,
            config,
            stream_mode=result.stream_modes,
            output_keys=self.spec.output_keys if output_keys is None else output_keys,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            durability=durability,
            context=context,
            **kwargs,
        ):
            result.add(chunk)
        return result.value()

    async def ainvoke(
        self,
        input: Any,
        config: Optional[RunnableConfig] = None,
        *,
        stream_mode: Any = "values",
        output_keys: Any = None,
        interrupt_before: Any = None,
        interrupt_after: Any = None,
        durability: Any = None,
        context: Any = None,
        **kwargs: Any,
    ) -> Any:
        result = _InvokeResult(stream_mode)
        async for chunk in self.astream(
            input,
            config,
            stream_mode=result.stream_modes,
            output_keys=self.spec.output_keys if output_keys is None else output_keys,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            durability=durability,
            context=context,
            **kwargs,
        ):
            result.add(chunk)
        return result.value()

    # -- state API ------------------------------------------------------------------
    def _require_saver(self) -> BaseCheckpointSaver:
        if self.checkpointer is None:
            raise ValueError("No checkpointer set")
        return self.checkpointer

    def _subgraph_at(self, checkpoint_ns: str) -> Optional["CompiledStateGraph"]:
        """The subgraph whose checkpoints a namespace names (``"sub:<id>"``,
        ``"outer:<id>|inner:<id>"``), found through the nodes that run it."""
        graph: Any = self
        for name in recast_namespace(checkpoint_ns).split("|"):
            node = graph.spec.nodes.get(name)
            graph = node.subgraph if node is not None else None
            if graph is None:
                return None
        return graph

    def _state_target(self, config: RunnableConfig) -> tuple["CompiledStateGraph", RunnableConfig]:
        """Which graph a state method's config addresses, and the config in
        that graph's terms (the root namespace when none is given)."""
        cfg = _user_config(config)
        cfg["configurable"].setdefault("checkpoint_ns", "")
        ns = cfg["configurable"]["checkpoint_ns"]
        target = self._subgraph_at(ns) if ns else None
        return (target or self), cfg

    def state_at(self, saver: BaseCheckpointSaver, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        """The state at ``config`` (its namespace, its ``checkpoint_id`` or
        the latest one) in ``saver``, read with this graph's channels."""
        saved = saver.get_tuple(config)
        if saved is None:
            return empty_snapshot(self, config)
        # Asking for a given checkpoint gets its record; asking for the thread
        # gets where it stands now.
        live = "checkpoint_id" not in config.get("configurable", {})
        return build_snapshot(self, saved, saver=saver, live=live, subgraphs=subgraphs)

    def get_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's state at its latest checkpoint (or ``checkpoint_id``).
        A config whose ``checkpoint_ns`` names a subgraph task reads that
        subgraph's state; ``subgraphs=True`` fills in the state of the
        subgraphs the pending tasks run."""
        saver = self._require_saver()
        target, cfg = self._state_target(config)
        snap = target.state_at(saver, cfg, subgraphs=subgraphs)
        if snap.metadata is None and target is self:
            return empty_snapshot(self, config)  # names the thread as the caller did
        return snap

    def get_state_history(
        self,
        config: RunnableConfig,
        *,
        filter: Optional[dict] = None,
        before: Optional[RunnableConfig] = None,
        limit: Optional[int] = None,
    ) -> Iterator[StateSnapshot]:
        """The thread's checkpoints, newest first (a subgraph's when the
        config's ``checkpoint_ns`` names one)."""
        saver = self._require_saver()
        target, cfg = self._state_target(config)
        for saved in saver.list(cfg, filter=filter, before=before, limit=limit):
            yield build_snapshot(target, saved, saver=saver)

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
        target, cfg = self._state_target(config)
        ns = cfg["configurable"]["checkpoint_ns"]
        if ns and target is self:
            raise ValueError(f"Subgraph {recast_namespace(ns)} not found")
        parents = {
            k: v for k, v in ((config.get("configurable") or {}).get("checkpoint_map") or {}).items() if k != ns
        }
        saved = apply_update(target.spec, saver, cfg, values, as_node, parents=parents, caller_config=config)
        return with_checkpoint_map(saved, {"parents": parents})

    async def aget_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        return await asyncio.to_thread(self.get_state, config, subgraphs=subgraphs)

    async def aget_state_history(self, config: RunnableConfig, **kwargs: Any) -> AsyncIterator[StateSnapshot]:
        items = await asyncio.to_thread(lambda: list(self.get_state_history(config, **kwargs)))
        for item in items:
            yield item

    async def aupdate_state(self, config: RunnableConfig, values: Any, as_node: Optional[str] = None, task_id: Optional[str] = None) -> RunnableConfig:
        return await asyncio.to_thread(self.update_state, config, values, as_node)

    def get_graph(self, config: Optional[RunnableConfig] = None, *, xray: Any = False) -> Any:
        """The graph as langchain-core's drawable ``Graph`` (nodes, edges,
        conditional edges with their labels); with ``xray`` (True, or a
        depth) subgraph nodes are drawn as their own graphs."""
        return draw_graph(self, xray=xray, config=config)

    async def aget_graph(self, config: Optional[RunnableConfig] = None, *, xray: Any = False) -> Any:
        return self.get_graph(config, xray=xray)


CompiledGraph = CompiledStateGraph


# Keys of a run's configurable that its runs' metadata shows (as LangGraph).
_METADATA_FROM_CONFIGURABLE = ("thread_id", "checkpoint_id", "checkpoint_ns", "task_id", "run_id", "assistant_id", "graph_id")


def _propagate_to_metadata(config: dict) -> None:
    configurable = config.get("configurable") or {}
    metadata = config["metadata"] = dict(config.get("metadata") or {})
    for key in _METADATA_FROM_CONFIGURABLE:
        if key not in metadata and configurable.get(key):
            metadata[key] = configurable[key]


def _run_output(loop: ThreadLoop) -> Any:
    """What the graph's run ends with: its output values."""
    return read_values(loop.channels, loop.output_keys)


def _user_config(config: RunnableConfig) -> RunnableConfig:
    configurable = dict(config.get("configurable") or {})
    return {"configurable": {k: configurable[k] for k in _USER_CONFIG_KEYS if k in configurable}}


def _with_interrupts(latest: Any, interrupts: list) -> Any:
    if interrupts and isinstance(latest, dict):
        return {**latest, INTERRUPT: interrupts}
    if interrupts and latest is None:
        return {INTERRUPT: interrupts}
    return latest


def _shape(mode: str, chunk: Any, single: bool, subgraphs: bool, ns: tuple = ()) -> Any:
    if single:
        return (ns, chunk) if subgraphs else chunk
    return (ns, mode, chunk) if subgraphs else (mode, chunk)


class _InvokeResult:
    """What invoke returns, folded from the stream: the last values chunk
    plus any interrupts (``values`` mode), or every chunk (other modes)."""

    def __init__(self, stream_mode: Any) -> None:
        self.values_mode = stream_mode == "values"
        self.stream_modes = ["updates", "values"] if self.values_mode else stream_mode
        self.chunks: list = []
        self.latest: Any = None
        self.interrupts: list = []

    def add(self, chunk: Any) -> None:
        if not self.values_mode:
            self.chunks.append(chunk)
            return
        mode, payload = chunk
        if mode == "values":
            self.latest = payload
        elif isinstance(payload, dict) and INTERRUPT in payload:
            self.interrupts.extend(payload[INTERRUPT])

    def value(self) -> Any:
        return _with_interrupts(self.latest, self.interrupts) if self.values_mode else self.chunks
