"""Run one task: call the node, turn its output into writes, apply its
``RetryPolicy``. Used by the local runtime's thread pool and by distributed
workers alike; the caller decides where the writes go."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Mapping, Optional, Sequence

from lgdist.constants import INTERRUPT, NO_WRITES
from lgdist.engine.channels import BaseChannel
from lgdist.engine.namespace import task_namespace
from lgdist.engine.spec import Write
from lgdist.engine.task_context import TaskContext, reset_task_context, set_task_context
from lgdist.engine.tasks import Task
from lgdist.errors import GraphBubbleUp, GraphInterrupt, ParentCommand
from lgdist.retry import matching_policy, retry_delay
from lgdist.types import Command

FreshReader = Callable[[Sequence[Write]], Mapping[str, BaseChannel]]

def _start_attempt(ctx: TaskContext, attempt: int) -> None:
    """Reset what an attempt counts, and tell a retried node (through
    ``runtime.execution_info``) which attempt this is. (The first attempt's
    info is the task's own: no copy on the common path.)"""
    ctx.counter = 0
    if attempt > 1 and getattr(ctx.runtime, "execution_info", None) is not None:
        ctx.runtime = ctx.runtime.patch_execution_info(node_attempt=attempt)


def _retry_delay_after(task: Task, ctx: TaskContext, exc: Exception, failures: int) -> Optional[float]:
    """Seconds to wait before retrying ``task`` after its ``failures``-th
    failure ``exc``, or None to give up (no policy of the node matches it,
    or the matching one has had its attempts)."""
    if hasattr(exc, "add_note"):
        exc.add_note(f"During task with name '{task.name}' and id '{task.id}'")
    policy = matching_policy(task.node.retry_policy or (), exc)
    if policy is None or failures >= policy.max_attempts:
        return None
    # A retried subgraph continues from its checkpoint, like a resumed one.
    ctx.resuming = True
    return retry_delay(policy, failures)


def make_fresh_reader(channels: Mapping[str, BaseChannel]) -> FreshReader:
    """State as a task sees it after its own writes: the step-start channels
    with only this task's writes applied (copies; the originals are untouched)."""

    def read_fresh(writes: Sequence[Write]) -> Mapping[str, BaseChannel]:
        grouped: dict[str, list] = {}
        for chan, value in writes:
            if chan in channels:
                grouped.setdefault(chan, []).append(value)
        if not grouped:
            return channels
        view = dict(channels)
        for chan, values in grouped.items():
            copy = channels[chan].copy()
            copy.update(values)
            view[chan] = copy
        return view

    return read_fresh


def _finish(task: Task, output: Any, read_fresh: FreshReader) -> None:
    writes = task.node.write_output(output, read_fresh)
    task.writes[:] = writes if writes else [(NO_WRITES, None)]


async def _afinish(task: Task, output: Any, read_fresh: FreshReader) -> None:
    """:func:`_finish` in an async run: a writer with an async twin (one
    whose conditional edges may await an async router) is awaited."""
    awrite = getattr(task.node.write_output, "awrite", None)
    writes = await awrite(output, read_fresh) if awrite is not None else task.node.write_output(output, read_fresh)
    task.writes[:] = writes if writes else [(NO_WRITES, None)]


def _command_from_subgraph(exc: ParentCommand) -> Command:
    """A subgraph node returned ``Command(graph=Command.PARENT, …)``: it is
    addressed to the graph running this task, as if this task returned it."""
    cmd = exc.command
    return Command(update=cmd.update, goto=cmd.goto, resume=cmd.resume)


def _record_interrupt(task: Task, ctx: TaskContext, exc: GraphInterrupt) -> None:
    task.writes[:] = [(INTERRUPT, list(exc.interrupts))]
    resume = ctx.resume_write()
    if resume:
        task.writes.append(resume)


def _offer_write_in_run(task: Task, ctx: TaskContext, read_fresh: FreshReader, *, is_async: bool) -> list:
    """Let the node compute its writes inside its own run (see
    ``TaskContext.write_in_run``); returns a list that is non-empty once it did."""
    wrote: list = []

    # A Command for the parent graph is raised once the node's run ended,
    # as when the writes are computed after it (not taken for a subgraph's).
    def write_in_run(output: Any) -> None:
        try:
            _finish(task, output, read_fresh)
        except ParentCommand as exc:
            wrote.append(exc)
            return
        wrote.append(None)

    async def awrite_in_run(output: Any) -> None:
        try:
            await _afinish(task, output, read_fresh)
        except ParentCommand as exc:
            wrote.append(exc)
            return
        wrote.append(None)

    ctx.node_bound = task.node.bound
    # An async run of a sync node: its writer may need to await a router.
    sync_ok = not (is_async and getattr(task.node.write_output, "has_async_router", False))
    ctx.write_in_run = write_in_run if sync_ok else None
    ctx.awrite_in_run = awrite_in_run if is_async else None
    return wrote


def run_task(task: Task, config: dict, ctx: TaskContext, read_fresh: FreshReader) -> None:
    """Run ``task`` to completion, filling ``task.writes``.

    Raises ``GraphInterrupt`` (after recording the interrupt as a write) or
    the node's exception once its retry policy gives up.
    """
    failures = 0
    while True:
        _start_attempt(ctx, failures + 1)
        token = set_task_context(ctx)
        try:
            wrote = _offer_write_in_run(task, ctx, read_fresh, is_async=False)
            try:
                output = task.node.bound.invoke(task.input, config)
            except ParentCommand as exc:
                output = _command_from_subgraph(exc)
                wrote.clear()
            if not wrote:
                _finish(task, output, read_fresh)
            elif wrote[0] is not None:
                raise wrote[0]
            return
        except GraphInterrupt as exc:
            _record_interrupt(task, ctx, exc)
            raise
        except GraphBubbleUp:
            raise
        except Exception as exc:
            failures += 1
            delay = _retry_delay_after(task, ctx, exc, failures)
            if delay is None:
                raise
            time.sleep(delay)
        finally:
            reset_task_context(token)


async def arun_task(task: Task, config: dict, ctx: TaskContext, read_fresh: FreshReader) -> None:
    """Async twin of :func:`run_task`."""
    failures = 0
    while True:
        _start_attempt(ctx, failures + 1)
        token = set_task_context(ctx)
        try:
            wrote = _offer_write_in_run(task, ctx, read_fresh, is_async=True)
            try:
                output = await task.node.bound.ainvoke(task.input, config)
            except ParentCommand as exc:
                output = _command_from_subgraph(exc)
                wrote.clear()
            if not wrote:
                await _afinish(task, output, read_fresh)
            elif wrote[0] is not None:
                raise wrote[0]
            return
        except GraphInterrupt as exc:
            _record_interrupt(task, ctx, exc)
            raise
        except GraphBubbleUp:
            raise
        except Exception as exc:
            failures += 1
            delay = _retry_delay_after(task, ctx, exc, failures)
            if delay is None:
                raise
            await asyncio.sleep(delay)
        finally:
            reset_task_context(token)


def task_config(
    base: Mapping[str, Any],
    task: Task,
    step: int,
    *,
    checkpoint_ns: str = "",
    callbacks: Any = None,
) -> dict:
    """The RunnableConfig a node is invoked with (same metadata keys as
    LangGraph, so nodes and tracing that read them keep working)."""
    task_ns = task_namespace(checkpoint_ns, task.name, task.id)
    base_metadata = base.get("metadata") or {}
    thread_id = (base.get("configurable") or {}).get("thread_id")
    metadata = {
        # A node's runs show their thread, as in LangGraph.
        **({"thread_id": thread_id} if thread_id and "thread_id" not in base_metadata else {}),
        **base_metadata,
        "langgraph_step": step,
        "langgraph_node": task.name,
        "langgraph_triggers": task.triggers,
        "langgraph_path": task.path,
        "langgraph_checkpoint_ns": task_ns,
    }
    configurable = {**(base.get("configurable") or {}), "checkpoint_ns": task_ns}
    configurable.pop("checkpoint_id", None)
    config = {
        **{
            k: v
            for k, v in base.items()
            if k not in ("metadata", "configurable", "callbacks", "run_name", "run_id", "tags")
        },
        "metadata": metadata,
        "configurable": configurable,
        "run_name": task.name,
    }
    # As in LangGraph, a node's config has no "tags" when neither the
    # caller nor the node gave any.
    tags = list(base.get("tags") or []) + list(task.node.tags)
    if tags:
        config["tags"] = tags
    if callbacks is not None:
        config["callbacks"] = callbacks
    elif base.get("callbacks") is not None:
        config["callbacks"] = base["callbacks"]
    return config
