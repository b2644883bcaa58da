"""``RemoteGraph``: a registered graph on the workers, used like a compiled
graph. Swap ``workflow.compile(...)`` for ``RemoteGraph("name")``."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Iterator, Optional

from langchain_core.runnables import Runnable, RunnableConfig, ensure_config

from lgdist.client.client import Client
from lgdist.client.remote_events import TREE_MODES, RemoteRunTree, ends_a_step
from lgdist.constants import INTERRUPT
from lgdist.settings import Settings
from lgdist.types import StateSnapshot


class RemoteGraph(Runnable):
    """The compiled-graph API (``invoke``, ``stream``, ``get_state``, …) for a
    graph that runs on lgdist workers."""

    def __init__(
        self,
        name: str,
        *,
        client: Optional[Client] = None,
        config: Optional[RunnableConfig] = None,
        **settings: Any,
    ) -> None:
        """``name`` is the graph's registered name. ``settings`` are lgdist
        settings (``broker_url=``, ``database_url=``, ... as the ``LGDIST_*``
        variables name them) that override the environment for this graph's
        own client; ``config`` is merged under every call's config."""
        self.name = name
        self.config = config
        if client is not None and settings:
            raise TypeError(f"RemoteGraph({name!r}) takes a client or settings for one, not both: {sorted(settings)}")
        unknown = sorted(set(settings) - set(Settings.model_fields))
        if unknown:
            raise TypeError(
                f"RemoteGraph({name!r}) got unknown settings {unknown}; use lgdist settings "
                f"({', '.join(sorted(Settings.model_fields))})"
            )
        self.client = client or Client(Settings(**settings) if settings else None)

    def _merged(self, config: Optional[RunnableConfig]) -> RunnableConfig:
        """The call's config over the graph's default ``config``."""
        if not self.config:
            return dict(config or {})  # type: ignore[return-value]
        merged: dict = {**self.config, **(config or {})}
        configurable = {**(self.config.get("configurable") or {}), **((config or {}).get("configurable") or {})}
        if configurable:
            merged["configurable"] = configurable
        return merged  # type: ignore[return-value]

    @staticmethod
    def _thread(config: Optional[RunnableConfig]) -> tuple[Optional[str], Optional[str]]:
        configurable = (config or {}).get("configurable") or {}
        return configurable.get("thread_id"), configurable.get("checkpoint_id")

    def stream(
        self,
        input: Any,
        config: Optional[RunnableConfig] = None,
        *,
        stream_mode: Any = "updates",
        interrupt_before: Any = None,
        interrupt_after: Any = None,
        subgraphs: bool = False,
        context: Any = None,
        durability: Optional[str] = "async",
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Run the graph on the workers and yield its chunks as the local
        ``stream`` does. ``durability`` ("async", the default as in
        LangGraph, "sync" or "exit") says when the workers store the steps
        they run in one task (README "Durability")."""
        yield from self._stream(
            input, config, stream_mode=stream_mode, interrupt_before=interrupt_before,
            interrupt_after=interrupt_after, subgraphs=subgraphs, context=context, durability=durability,
        )  # fmt: skip

    def _stream(
        self,
        input: Any,
        config: Optional[RunnableConfig],
        *,
        stream_mode: Any,
        interrupt_before: Any = None,
        interrupt_after: Any = None,
        subgraphs: bool = False,
        context: Any = None,
        durability: Optional[str] = "async",
        live: bool = True,
    ) -> Iterator[Any]:
        config = self._merged(config)
        thread_id, _ = self._thread(config)
        yield from self.client.stream(
            self.name,
            input,
            thread_id,
            stream_mode=stream_mode,
            config=dict(config),
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            subgraphs=subgraphs,
            context=context,
            durability=durability,
            live=live,
        )

    def invoke(self, input: Any, config: Optional[RunnableConfig] = None, **kwargs: Any) -> Any:
        """Run the graph on the workers and return its output, as the local
        ``invoke`` does; ``durability`` as for :meth:`stream` (default
        "async", as in LangGraph)."""
        known = ("interrupt_before", "interrupt_after", "context", "durability")
        options = {k: kwargs[k] for k in known if k in kwargs}
        config = self._merged(config)
        thread_id, _ = self._thread(config)
        run_id = self.client.submit(
            self.name, input, thread_id, config=dict(config), stream_mode=["values", "updates"], **options
        )
        latest, interrupts = self.client.outcome(run_id)
        latest = self._output(latest)
        if interrupts:
            return {**(latest or {}), INTERRUPT: interrupts} if isinstance(latest, dict) or latest is None else latest
        return latest

    def _output(self, values: Any) -> Any:
        """A streamed "values" chunk (every state key) narrowed to the graph's
        output schema, which is what a compiled graph's ``invoke`` returns."""
        keys = self.client.backend.registry.get(self.name).get_graph_spec().output_keys
        if isinstance(keys, str) or not isinstance(values, dict):
            return values
        return {k: values[k] for k in keys if k in values}

    async def ainvoke(self, input: Any, config: Optional[RunnableConfig] = None, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.invoke, input, config, **kwargs)

    async def astream(self, input: Any, config: Optional[RunnableConfig] = None, **kwargs: Any) -> AsyncIterator[Any]:
        """``stream`` for asyncio. With callback handlers in ``config``
        (``astream_events`` adds one) the run is also reported to them as
        a run tree rebuilt from its stream: see :mod:`lgdist.client.remote_events`."""
        tree = await RemoteRunTree.start(ensure_config(config), self.get_name(), input)
        if tree is None:
            async for chunk in _pumped(lambda: self.stream(input, config, **kwargs)):
                yield chunk
            return
        try:
            async for chunk in self._astream_reported(tree, input, config, **kwargs):
                yield chunk
        except Exception as exc:
            await tree.fail(exc)
            raise
        await tree.end(self._output(tree.output))

    async def _astream_reported(
        self, tree: RemoteRunTree, input: Any, config: Optional[RunnableConfig], **kwargs: Any
    ) -> AsyncIterator[Any]:
        """The caller's chunks, while ``tree`` is fed from the run's events
        (asked for besides the caller's modes). A step's ``updates`` /
        ``values`` and subgraph chunks wait until its nodes' runs have
        ended, as a local run yields them."""
        mode = kwargs.pop("stream_mode", "updates")
        single = isinstance(mode, str)
        wanted = [mode] if single else list(mode)
        subgraphs = kwargs.get("subgraphs", False)
        modes = [*wanted, *(m for m in TREE_MODES if m not in wanted)]
        held: list = []
        async for item in _pumped(lambda: self.stream(input, config, stream_mode=modes, **kwargs)):
            ns, (got, chunk) = (item[0], item[1:]) if subgraphs else ((), item)
            if not ns:
                await tree.feed(got, chunk)
                if ends_a_step(got, chunk):
                    for out in held:
                        yield out
                    held.clear()
            if got in wanted:
                out = chunk if single else (got, chunk)
                out = (ns, out) if subgraphs and single else ((ns, *out) if subgraphs else out)
                if got in ("updates", "values") or ns:
                    held.append(out)
                else:
                    yield out
        for out in held:
            yield out

    def get_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        thread_id, checkpoint_id = self._thread(self._merged(config))
        return self.client.get_state(self.name, thread_id, checkpoint_id, subgraphs=subgraphs)

    def get_state_history(
        self,
        config: RunnableConfig,
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[RunnableConfig] = None,
        limit: Optional[int] = None,
    ) -> Iterator[StateSnapshot]:
        """The thread's checkpoints, newest first, as ``StateSnapshot``s."""
        thread_id, _ = self._thread(self._merged(config))
        history = self.client.get_state_history(self.name, thread_id, filter=filter, before=before, limit=limit)
        return iter(history)

    async def aget_state_history(
        self,
        config: RunnableConfig,
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[RunnableConfig] = None,
        limit: Optional[int] = None,
    ) -> AsyncIterator[StateSnapshot]:
        history = await asyncio.to_thread(
            lambda: list(self.get_state_history(config, filter=filter, before=before, limit=limit))
        )
        for snapshot in history:
            yield snapshot

    def update_state(self, config: RunnableConfig, values: Any, as_node: Optional[str] = None) -> dict:
        thread_id, checkpoint_id = self._thread(self._merged(config))
        return self.client.update_state(self.name, thread_id, values, as_node, checkpoint_id)

    async def aget_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        return await asyncio.to_thread(self.get_state, config, subgraphs=subgraphs)

    def get_graph(self, config: Optional[RunnableConfig] = None, *, xray: Any = False) -> Any:
        """The registered graph's structure (nodes, edges, conditional
        edges), as its compiled graph's ``get_graph`` draws it."""
        return self.client.backend.registry.get(self.name).get_graph(config, xray=xray)

    async def aget_graph(self, config: Optional[RunnableConfig] = None, *, xray: Any = False) -> Any:
        return await asyncio.to_thread(self.get_graph, config, xray=xray)

    async def aupdate_state(self, config: RunnableConfig, values: Any, as_node: Optional[str] = None) -> dict:
        return await asyncio.to_thread(self.update_state, config, values, as_node)


async def _pumped(stream: Any) -> AsyncIterator[Any]:
    """The items of a blocking iterator (``stream()`` is called in a
    thread), yielded on the event loop as they come."""
    queue: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()
    done = object()

    def pump() -> None:
        try:
            for item in stream():
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, done)

    worker = loop.run_in_executor(None, pump)
    while True:
        item = await queue.get()
        if item is done:
            break
        if isinstance(item, BaseException):
            raise item
        yield item
    await worker
