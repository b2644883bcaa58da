"""``CompiledStateGraph``: a compiled graph as a LangChain ``Runnable`` with
LangGraph's state API (``get_state``, ``get_state_history``,
``update_state``).

A compiled graph used as a node, or invoked from inside a node, is a
subgraph: it runs with its parent's checkpointer under the task's checkpoint
namespace (see :mod:`lgdist.graph.nesting`), its interrupts stop the parent,
and ``stream(..., subgraphs=True)`` shows its chunks under that namespace.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterator, Optional, Sequence

from langchain_core.runnables import Runnable, RunnableConfig

from lgdist.cache.keys import node_namespace
from lgdist.checkpoint.base import BaseCheckpointSaver
from lgdist.engine.spec import GraphSpec
from lgdist.engine.task_context import maybe_task_context
from lgdist.graph.drawing import draw_graph
from lgdist.graph.graph_run import GraphRun
from lgdist.graph.invoke_result import InvokeResult
from lgdist.graph.json_schema import context_jsonschema, output_model, state_jsonschema
from lgdist.graph.state_methods import StateMethods
from lgdist.local import stream_async, stream_sync
from lgdist.run_tree import astart_graph_run, start_graph_run
from lgdist.runtime import coerce_context

__all__ = ["CompiledStateGraph", "CompiledGraph"]


class CompiledStateGraph(StateMethods, Runnable):
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
        """The keys a "values" stream shows (LangGraph's attribute): every
        state key, whatever the output schema."""
        return self.spec.stream_keys

    # -- running ------------------------------------------------------------------
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
        run = GraphRun(
            self, config, stream_mode=stream_mode, output_keys=output_keys, interrupt_before=interrupt_before,
            interrupt_after=interrupt_after, debug=debug, subgraphs=subgraphs, durability=durability, context=context,
        )
        trace = start_graph_run(run.loop.config, self.name, input)
        run.traced_by(trace)
        try:
            for item in stream_sync(run.loop, input, context=run.context, store=run.store):
                yield from run.deliver(item)
            run.raise_if_subgraph_stopped()
        except BaseException as exc:
            if trace is not None:
                trace.on_chain_error(exc)
            raise
        if trace is not None:
            trace.on_chain_end(run.output())

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
        """Async :meth:`stream`."""
        run = GraphRun(
            self, config, stream_mode=stream_mode, output_keys=output_keys, interrupt_before=interrupt_before,
            interrupt_after=interrupt_after, debug=debug, subgraphs=subgraphs, durability=durability, context=context,
        )
        trace = await astart_graph_run(run.loop.config, self.name, input)
        run.traced_by(trace)
        try:
            async for item in stream_async(run.loop, input, context=run.context, store=run.store):
                for out in run.deliver(item):
                    yield out
            run.raise_if_subgraph_stopped()
        except BaseException as exc:
            if trace is not None:
                await trace.on_chain_error(exc)
            raise
        if trace is not None:
            await trace.on_chain_end(run.output())

    def invoke(
        self,
        input: Any,
        config: Optional[RunnableConfig] = None,
        *,
        stream_mode: Any = "values",
        output_keys: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Run the graph to its end (or an interrupt) and return the final
        values; an interrupted run's values carry ``__interrupt__``. Takes
        :meth:`stream`'s options (``interrupt_before``, ``durability``,
        ``context``, ...)."""
        result = InvokeResult(stream_mode)
        for chunk in self.stream(input, config, **self._invoke_options(result, output_keys, kwargs)):
            result.add(chunk)
        return result.value()

    async def ainvoke(
        self,
        input: Any,
        config: Optional[RunnableConfig] = None,
        *,
        stream_mode: Any = "values",
        output_keys: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Async :meth:`invoke`."""
        result = InvokeResult(stream_mode)
        async for chunk in self.astream(input, config, **self._invoke_options(result, output_keys, kwargs)):
            result.add(chunk)
        return result.value()

    def _invoke_options(self, result: InvokeResult, output_keys: Any, options: dict) -> dict:
        """The stream options of an invoke call: the modes its result is
        folded from, and the output schema's keys unless it names its own."""
        return {
            **options,
            "stream_mode": result.stream_modes,
            "output_keys": self.spec.output_keys if output_keys is None else output_keys,
        }

    def get_graph(self, config: Optional[RunnableConfig] = None, *, xray: Any = False) -> Any:
        """The graph as langchain-core's drawable ``Graph`` (nodes, edges,
        conditional edges with their labels); with ``xray`` (True, or a
        depth) subgraph nodes are drawn as their own graphs."""
        return draw_graph(self, xray=xray, config=config)

    async def aget_graph(self, config: Optional[RunnableConfig] = None, *, xray: Any = False) -> Any:
        return self.get_graph(config, xray=xray)


CompiledGraph = CompiledStateGraph
