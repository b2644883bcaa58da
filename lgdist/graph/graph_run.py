"""One call of ``stream``/``astream`` on a compiled graph, written once for
both: the :class:`ThreadLoop` built from the call's options, and how each
item of the loop's outbox reaches the caller (and, for a subgraph, the root
stream). The sync and async methods differ only in how they drive the loop
and trace the run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Optional

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config

from lgdist.engine.task_context import maybe_task_context
from lgdist.errors import GraphInterrupt
from lgdist.graph.nesting import nested_saver_and_config
from lgdist.loop import DEFAULT_RECURSION_LIMIT, ThreadLoop
from lgdist.loop.events import read_values

if TYPE_CHECKING:
    from lgdist.graph.compiled import CompiledStateGraph

# Keys of a run's configurable that its runs' metadata shows (as LangGraph).
_METADATA_FROM_CONFIGURABLE = ("thread_id", "checkpoint_id", "checkpoint_ns", "task_id", "run_id", "assistant_id", "graph_id")
# Loop statuses that stop a subgraph's parent task.
_STOPPED = ("interrupted", "interrupt_before", "interrupt_after")


class GraphRun:
    """The loop of one stream call and the shape its caller wants chunks in.

    ``requested`` are the stream modes the caller asked for (the loop may
    produce more: ``debug``, or what a root stream wants from subgraphs);
    ``single`` when it asked for one mode as a string (bare chunks)."""

    def __init__(
        self,
        graph: "CompiledStateGraph",
        config: Optional[RunnableConfig],
        *,
        stream_mode: Any,
        output_keys: Any,
        interrupt_before: Any,
        interrupt_after: Any,
        debug: Optional[bool],
        subgraphs: bool,
        durability: Any,
        context: Any,
    ) -> None:
        # Streams show every state key; invoke narrows to the output schema.
        output_keys = graph.spec.stream_keys if output_keys is None else output_keys
        config = _run_config(config)
        if stream_mode is None:
            stream_mode = graph.stream_mode
        self.single = isinstance(stream_mode, str)
        requested = [stream_mode] if self.single else list(dict.fromkeys(stream_mode))
        self.requested = set(requested)
        self.subgraphs = subgraphs
        modes = list(requested)
        if (debug or (debug is None and graph.debug)) and "debug" not in modes:
            modes.append("debug")
        # A graph invoked while a task runs is that task's subgraph.
        parent = maybe_task_context()
        if parent is None:
            if graph.checkpointer_option is True:
                raise RuntimeError("checkpointer=True cannot be used for root graphs.")
            saver = graph.checkpointer
        else:
            saver, config = nested_saver_and_config(graph.checkpointer_option, parent, config)
            # Produce what the root stream wants from subgraphs, too.
            modes += [m for m in sorted(parent.sink_modes) if m not in modes]
        self.loop = ThreadLoop(
            graph.spec,
            config,
            saver=saver,
            stream_modes=modes,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            output_keys=output_keys,
            parent=parent,
            stream_subgraphs=subgraphs,
            # LangGraph's default is "async": store each step's checkpoint
            # while the next step runs.
            durability=(durability or "async") if parent is None else None,
        )
        self.context, self.store = graph._run_context(context)

    def traced_by(self, trace: Any) -> None:
        """Make the nodes' runs children of the graph's traced run."""
        if trace is not None:
            self.loop.config["callbacks"] = trace.get_child()

    def deliver(self, item: tuple) -> Iterator[Any]:
        """Route one outbox item: a subgraph's own chunk also goes to the
        root stream (when it asked for subgraphs); the caller gets what it
        requested, namespaced relative to this graph."""
        loop = self.loop
        mode, chunk = item[0], item[1]
        ns = item[2] if len(item) > 2 else loop.namespace
        if loop.parent is not None and loop.sink is not None and mode in loop.sink_modes:
            loop.sink(ns, mode, chunk)
        if mode not in self.requested:
            return
        relative = ns[len(loop.namespace):]
        if relative and not self.subgraphs:
            return
        yield _shape(mode, chunk, self.single, self.subgraphs, relative)

    def raise_if_subgraph_stopped(self) -> None:
        """A subgraph's interrupt (or breakpoint) stops the task that runs it."""
        if self.loop.parent is not None and self.loop.status in _STOPPED:
            raise GraphInterrupt(self.loop.interrupts)

    def output(self) -> Any:
        """What the graph's run ends with: its output values."""
        return read_values(self.loop.channels, self.loop.output_keys)


def _run_config(config: Optional[RunnableConfig]) -> RunnableConfig:
    # langchain's ensure_config() fills in its own default limit (25); only
    # a limit the caller set applies, else LangGraph's default.
    limit = (config or {}).get("recursion_limit", DEFAULT_RECURSION_LIMIT)
    config = ensure_config(config)
    config["recursion_limit"] = limit
    _propagate_to_metadata(config)
    if limit < 1:
        raise ValueError("recursion_limit must be at least 1")
    return config


def _propagate_to_metadata(config: dict) -> None:
    configurable = config.get("configurable") or {}
    metadata = config["metadata"] = dict(config.get("metadata") or {})
    for key in _METADATA_FROM_CONFIGURABLE:
        if key not in metadata and configurable.get(key):
            metadata[key] = configurable[key]


def _shape(mode: str, chunk: Any, single: bool, subgraphs: bool, ns: tuple = ()) -> Any:
    if single:
        return (ns, chunk) if subgraphs else chunk
    return (ns, mode, chunk) if subgraphs else (mode, chunk)
