"""``RemoteGraph``: a registered graph on the workers, used like a compiled
graph. Swap ``workflow.compile(...)`` for ``RemoteGraph("name")``."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Iterator, Optional

from langchain_core.runnables import Runnable, RunnableConfig

from lgdist.client.client import Client
from lgdist.constants import INTERRUPT
from lgdist.types import StateSnapshot


class RemoteGraph(Runnable):
    """The compiled-graph API (``invoke``, ``stream``, ``get_state``, …) for a
    graph that runs on lgdist workers."""

    def __init__(self, name: str, *, client: Optional[Client] = None, **settings: Any) -> None:
        self.name = name
        self.client = client or Client()

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
        **kwargs: Any,
    ) -> Iterator[Any]:
        thread_id, _ = self._thread(config)
        for chunk in self.client.stream(
            self.name,
            input,
            thread_id,
            stream_mode=stream_mode,
            config=dict(config or {}),
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
        ):
            if subgraphs:
                yield ((), chunk) if isinstance(stream_mode, str) else ((), *chunk)
            else:
                yield chunk

    def invoke(self, input: Any, config: Optional[RunnableConfig] = None, **kwargs: Any) -> Any:
        latest = None
        interrupts: list = []
        for mode, chunk in self.stream(input, config, stream_mode=["values", "updates"], **kwargs):
            if mode == "values":
                latest = chunk
            elif isinstance(chunk, dict) and INTERRUPT in chunk:
                interrupts.extend(chunk[INTERRUPT])
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
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        done = object()

        def pump() -> None:
            try:
                for chunk in self.stream(input, config, **kwargs):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
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

    def get_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        thread_id, checkpoint_id = self._thread(config)
        return self.client.get_state(self.name, thread_id, checkpoint_id)

    def get_state_history(self, config: RunnableConfig, **kwargs: Any) -> Iterator[StateSnapshot]:
        thread_id, _ = self._thread(config)
        return iter(self.client.get_state_history(self.name, thread_id, **kwargs))

    def update_state(self, config: RunnableConfig, values: Any, as_node: Optional[str] = None) -> dict:
        thread_id, checkpoint_id = self._thread(config)
        return self.client.update_state(self.name, thread_id, values, as_node, checkpoint_id)

    async def aget_state(self, config: RunnableConfig, **kwargs: Any) -> StateSnapshot:
        return await asyncio.to_thread(self.get_state, config)

    async def aupdate_state(self, config: RunnableConfig, values: Any, as_node: Optional[str] = None) -> dict:
        return await asyncio.to_thread(self.update_state, config, values, as_node)
