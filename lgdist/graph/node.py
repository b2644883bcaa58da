"""Wrap a user function as a node: a LangChain ``Runnable`` that passes
``config``, ``writer`` or ``runtime`` when the function's signature asks."""

from __future__ import annotations

import asyncio
import inspect
import sys
from typing import Any, Callable, Optional

from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
    run_in_executor,
    set_config_context,
)

from lgdist.engine.task_context import maybe_task_context
from lgdist.run_tree import astream_output, stream_output


def _wants(func: Callable, name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params


def _is_task_node(runnable: Any) -> bool:
    """Whether ``runnable`` is the node of the task running now (not a
    router or another runnable it calls): only a node's run streams its
    output as a chunk, as in LangGraph."""
    ctx = maybe_task_context()
    return ctx is not None and ctx.node_bound is runnable


# The tag of what a node's function calls (LangGraph runs a node as a
# sequence whose first step is the function).
_CHILD_TAG = "seq:step:1"


class NodeRunnable(Runnable):
    """A function (sync or async) as a graph node."""

    def __init__(self, func: Callable, name: Optional[str] = None, *, trace: bool = True) -> None:
        self.name = name or getattr(func, "__name__", "node")
        self.trace = trace
        if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None)):
            self.afunc: Optional[Callable] = func
            self.func: Optional[Callable] = None
        else:
            self.func = func
            self.afunc = None
        target = func
        # Like LangGraph, only a parameter *named* ``config`` receives the
        # config: a second positional parameter with a default (the
        # ``lambda s, name=name: ...`` idiom) must keep its default.
        self._config_kw = _wants(target, "config")
        self._writer = _wants(target, "writer")
        self._runtime = _wants(target, "runtime")
        self._store = _wants(target, "store")

    def __repr__(self) -> str:
        return f"NodeRunnable({self.name})"

    def _args(self, input: Any, config: RunnableConfig) -> tuple[tuple, dict]:
        args: tuple = (input,)
        kwargs: dict = {}
        if self._config_kw:
            kwargs["config"] = config
        if self._writer or self._runtime or self._store:
            ctx = maybe_task_context()
            if self._writer:
                kwargs["writer"] = ctx.stream_writer if ctx else (lambda chunk: None)
            if self._runtime:
                kwargs["runtime"] = ctx.runtime if ctx else None
            if self._store:
                kwargs["store"] = getattr(ctx.runtime, "store", None) if ctx else None
        return args, kwargs

    def _write_in_run(self, run_manager: Any, output: Any) -> None:
        """As the task's node, compute the task's writes inside this run (its
        conditional edges' routers become child runs of it)."""
        ctx = maybe_task_context()
        if ctx is None or ctx.node_bound is not self or ctx.write_in_run is None:
            return
        ctx.node_run = run_manager
        try:
            ctx.write_in_run(output)
        finally:
            ctx.node_run = None

    async def _awrite_in_run(self, run_manager: Any, output: Any) -> None:
        ctx = maybe_task_context()
        if ctx is None or ctx.node_bound is not self or ctx.awrite_in_run is None:
            return
        ctx.node_run = run_manager
        try:
            await ctx.awrite_in_run(output)
        finally:
            ctx.node_run = None

    def invoke(self, input: Any, config: Optional[RunnableConfig] = None, **kwargs: Any) -> Any:
        given = config or {}
        config = ensure_config(config)
        if given and "tags" not in given:
            # As in LangGraph, a task config without tags stays without.
            config.pop("tags", None)
        if self.func is None:
            # As in LangGraph: an async-only node needs the async API. (A
            # driver that may choose, like a worker, runs it with ainvoke.)
            raise TypeError(
                f'No synchronous function provided to "{self.name}".'
                "\nEither initialize with a synchronous function or invoke"
                " via the async API (ainvoke, astream, etc.)"
            )
        run_manager = None
        if self.trace and config.get("callbacks"):
            # The node's run carries the metadata it was given (ensure_config
            # adds checkpoint_ns for what the node calls, not for its run).
            run_manager = get_callback_manager_for_config(given).on_chain_start(
                None, input, name=config.get("run_name") or self.name, run_id=config.pop("run_id", None)
            )
            config = patch_config(config, callbacks=run_manager.get_child(_CHILD_TAG))
        args, kw = self._args(input, config)
        try:
            with set_config_context(config) as context:
                output = context.run(self.func, *args, **kw)
            if run_manager is not None:
                self._write_in_run(run_manager, output)
        except BaseException as exc:
            if run_manager is not None:
                run_manager.on_chain_error(exc)
            raise
        if run_manager is not None:
            if _is_task_node(self):
                stream_output(run_manager, output)
            run_manager.on_chain_end(output)
        return output

    async def ainvoke(self, input: Any, config: Optional[RunnableConfig] = None, **kwargs: Any) -> Any:
        given = config or {}
        config = ensure_config(config)
        if given and "tags" not in given:
            # As in LangGraph, a task config without tags stays without.
            config.pop("tags", None)
        if self.afunc is None:
            return await run_in_executor(config, self.invoke, input, given)
        run_manager = None
        if self.trace and config.get("callbacks"):
            run_manager = await get_async_callback_manager_for_config(given).on_chain_start(
                None, input, name=config.get("run_name") or self.name, run_id=config.pop("run_id", None)
            )
            config = patch_config(config, callbacks=run_manager.get_child(_CHILD_TAG))
        args, kw = self._args(input, config)
        try:
            with set_config_context(config) as context:
                coro = self.afunc(*args, **kw)
                if sys.version_info >= (3, 11):
                    output = await asyncio.create_task(coro, context=context)
                else:  # pragma: no cover - 3.10 has no context= on create_task
                    output = await coro
            if run_manager is not None:
                await self._awrite_in_run(run_manager, output)
        except BaseException as exc:
            if run_manager is not None:
                await run_manager.on_chain_error(exc)
            raise
        if run_manager is not None:
            if _is_task_node(self):
                await astream_output(run_manager, output)
            await run_manager.on_chain_end(output)
        return output


def is_async_only(runnable: Any) -> bool:
    """Whether ``runnable`` is a node with no synchronous function (only
    ``ainvoke`` can run it)."""
    return isinstance(runnable, NodeRunnable) and runnable.func is None


def needs_async_run(node: Any) -> bool:
    """Whether a node (a ``NodeSpec``) can only run under the async API: its
    function is async-only, or one of its conditional edges' routers is."""
    return is_async_only(node.bound) or bool(getattr(node.write_output, "has_async_router", False))


def _is_generator(action: Any) -> bool:
    call = getattr(action, "__call__", None)
    return any(
        inspect.isgeneratorfunction(f) or inspect.isasyncgenfunction(f) for f in (action, call) if f is not None
    )


class RunnableNode(NodeRunnable):
    """A Runnable used as a node (a compiled graph, a ToolNode, a chain, a
    model): the node's run, with the runnable's own run (if it makes one,
    under its own name) inside it, as in LangGraph. Other attributes are
    the runnable's (``tools_by_name`` of a ToolNode, say)."""

    def __init__(self, runnable: Any, name: Optional[str] = None) -> None:
        self.runnable = runnable
        super().__init__(self._run, name or getattr(runnable, "name", None))
        self.afunc = self._arun

    def __getattr__(self, attr: str) -> Any:
        if attr == "runnable":
            raise AttributeError(attr)
        return getattr(self.runnable, attr)

    def _run(self, input: Any, config: RunnableConfig) -> Any:
        return self.runnable.invoke(input, config)

    async def _arun(self, input: Any, config: RunnableConfig) -> Any:
        return await self.runnable.ainvoke(input, config)


def as_node(action: Any, name: str) -> Any:
    """What runs a node's action: a function as a :class:`NodeRunnable`, a
    Runnable inside a :class:`RunnableNode`."""
    bound = as_runnable(action, name)
    if isinstance(bound, Runnable) and not isinstance(bound, NodeRunnable) and bound is action:
        return RunnableNode(action, name)
    return bound


def as_runnable(action: Any, name: Optional[str] = None) -> Any:
    """Anything a user may pass to ``add_node``, as something with
    ``invoke``/``ainvoke``."""
    if isinstance(action, Runnable):
        return action
    if _is_generator(action):
        # LangChain's RunnableLambda folds a generator's chunks with `+`
        # (the last chunk wins for dicts), as LangGraph's nodes do.
        return RunnableLambda(action, name=name)
    if callable(action):
        return NodeRunnable(action, name)
    raise TypeError(f"Expected a function or Runnable as node action, got {type(action).__name__}")
