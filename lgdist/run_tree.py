"""The graph's own run in the LangChain callback tree.

A run of a graph is a chain run (named after the graph, ``"LangGraph"`` by
default) whose children are its nodes' runs, each tagged with its step
(``graph:step:<n>``); what a node calls (a chat model, a subgraph) is a
child of the node's run. ``astream_events`` and tracers read this tree, as
they do LangGraph's. Without callback handlers nothing is started.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.runnables.config import (
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
)
from langchain_core.tracers._streaming import _StreamingCallbackHandler

# Metadata LangGraph gives its runs (a caller's own value wins).
_INTEGRATION = {"ls_integration": "langgraph"}


def start_graph_run(config: dict, name: str, input: Any) -> Any:
    """Start the graph's run; returns its run manager, or ``None`` when no
    handler listens. The caller's ``run_id`` (``astream_events`` sets one)
    becomes the run's id."""
    manager = get_callback_manager_for_config(config)
    if not manager.handlers:
        return None
    if "ls_integration" not in manager.metadata:
        manager.add_metadata(_INTEGRATION)
    return manager.on_chain_start(None, input, name=config.get("run_name") or name, run_id=config.get("run_id"))


async def astart_graph_run(config: dict, name: str, input: Any) -> Any:
    """Async :func:`start_graph_run`."""
    manager = get_async_callback_manager_for_config(config)
    if not manager.handlers:
        return None
    if "ls_integration" not in manager.metadata:
        manager.add_metadata(_INTEGRATION)
    return await manager.on_chain_start(
        None, input, name=config.get("run_name") or name, run_id=config.get("run_id")
    )


def step_callbacks(callbacks: Any, step: int) -> Any:
    """A task's callbacks: inside a graph's run, a copy tagged with the step
    (the tag applies to the node's run only, not to what it calls)."""
    if not isinstance(callbacks, BaseCallbackManager) or callbacks.parent_run_id is None:
        return callbacks
    tagged = callbacks.copy()
    tagged.add_tags([f"graph:step:{step}"], inherit=False)
    return tagged


def _streaming(handlers: Iterable[Any]) -> list:
    return [h for h in handlers if isinstance(h, _StreamingCallbackHandler)]


def stream_output(run_manager: Any, output: Any) -> None:
    """Tell streaming handlers (``astream_events``) what a run produced, as
    its one stream chunk."""
    for handler in _streaming(run_manager.handlers):
        for _ in handler.tap_output_iter(run_manager.run_id, iter([output])):
            pass


async def astream_output(run_manager: Any, output: Any) -> None:
    """Async :func:`stream_output`."""

    async def once() -> Any:
        yield output

    for handler in _streaming(run_manager.handlers):
        async for _ in handler.tap_output_aiter(run_manager.run_id, once()):
            pass


def has_streaming_handler(run_manager: Optional[Any]) -> bool:
    return run_manager is not None and bool(_streaming(run_manager.handlers))
