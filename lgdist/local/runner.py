"""Drivers that run a :class:`ThreadLoop`'s tasks in-process: a thread pool
for ``stream``/``invoke`` and asyncio for ``astream``/``ainvoke``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import contextvars
from typing import Any, AsyncIterator, Iterator, Optional

from langchain_core.runnables.config import get_executor_for_config

from lgdist.engine.execute import arun_task, make_fresh_reader, run_task
from lgdist.engine.tasks import Task
from lgdist.errors import GraphInterrupt, ParentCommand
from lgdist.loop import ThreadLoop
from lgdist.loop.messages import StreamMessagesHandler
from lgdist.loop.task_run import after_task, prepare_task, task_callbacks
from lgdist.loop.write_behind import WriteBehind


def _task_done(
    loop: ThreadLoop,
    task: Task,
    config: dict,
    handler: Optional[StreamMessagesHandler],
    exc: Optional[BaseException],
) -> Optional[BaseException]:
    """Record a finished parallel task; returns the error that must end the
    step (the node's own failure, or a command for the parent graph)."""
    if exc is None:
        after_task(loop, task, handler, config)
        loop.record(task)
        return None
    if isinstance(exc, GraphInterrupt):
        loop.record(task)
        return None
    if isinstance(exc, ParentCommand):
        return exc
    loop.record(task, exc)
    return exc


# How long tasks that finished wait for earlier tasks of their step that are
# still running, so that tasks finishing together are recorded in task order
# even when the machine is loaded; it bounds the delay a slow task ahead of
# a quick one adds to the quick one's chunk.
ORDER_GRACE_SECONDS = 0.05


def in_task_order(done: set, position: dict) -> list:
    """The futures of ``done`` in the order their tasks were submitted (the
    step's task order; ``position`` maps each future to its index). Tasks
    that finish within one polling round are recorded, and their chunks
    streamed, in that order, so a step of quick parallel tasks streams the
    same way every run."""
    return sorted(done, key=position.__getitem__)


def running_ahead(done: set, pending: set, position: dict) -> set:
    """Tasks still running that come before a finished one in task order:
    the ones worth a short wait (see ``ORDER_GRACE_SECONDS``)."""
    if not done or not pending:
        return set()
    last = max(position[f] for f in done)
    return {f for f in pending if position[f] < last}


def _drain(loop: ThreadLoop) -> Iterator[tuple[str, Any]]:
    outbox = loop.outbox
    while outbox:
        yield outbox.popleft()


_SHARED_POOL_SIZE = max(64, (os.cpu_count() or 1) * 8)
_shared_pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
_shared_lock = threading.Lock()
_in_shared_pool = threading.local()


def _mark_pool_thread() -> None:
    _in_shared_pool.value = True


def _executor_for(loop: ThreadLoop) -> Any:
    """The pool a run's parallel tasks go to.

    A process-wide pool whose threads are reused across runs (creating a
    pool's threads for every invoke dominated a fan-out step), except when
    the caller limits concurrency (``max_concurrency``) or this run is itself
    running on a pool thread (a graph invoked inside a node): those get a
    pool of their own, so nested runs can never wait on a pool they fill.
    """
    if loop.config.get("max_concurrency") or getattr(_in_shared_pool, "value", False):
        return get_executor_for_config(loop.config)
    global _shared_pool
    with _shared_lock:
        if _shared_pool is None:
            _shared_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=_SHARED_POOL_SIZE, thread_name_prefix="lgdist-node", initializer=_mark_pool_thread
            )
    return contextlib.nullcontext(_shared_pool)


def stream_sync(loop: ThreadLoop, input: Any, *, context: Any = None, store: Any = None) -> Iterator[tuple[str, Any]]:
    """Run the loop to its end, yielding ``(mode, chunk)`` as they happen."""
    _write_behind_if_async(loop)
    try:
        yield from _stream_sync(loop, input, context=context, store=store)
    finally:
        try:
            loop.flush()  # durability="exit": the run stopped, store where it is
        finally:
            if loop.write_behind is not None:
                loop.write_behind.wait()  # "async": the run returns once all is stored


def _write_behind_if_async(loop: ThreadLoop) -> None:
    """durability="async" (LangGraph's default): checkpoints and writes are
    stored on a background thread while the next step runs. A subgraph's
    loop stores before going on (its parent task's run waits for it)."""
    if loop.durability == "async" and loop.saver is not None and loop.parent is None:
        loop.write_behind = WriteBehind()


def _stream_sync(loop: ThreadLoop, input: Any, *, context: Any = None, store: Any = None) -> Iterator[tuple[str, Any]]:
    loop.load(input)
    yield from _drain(loop)
    callbacks, handler = task_callbacks(loop)
    if handler is not None and input is not None:
        handler.mark_seen(input)
    with _executor_for(loop) as executor:
        while loop.status == "pending":
            tasks = loop.plan()
            yield from _drain(loop)
            if loop.status != "pending":
                break
            read_fresh = make_fresh_reader(loop.channels)
            error: Optional[BaseException] = None
            if len(tasks) == 1 and loop.sink is None:
                # One task: run it on this thread (no pool hop per step).
                # Streaming subgraphs, it goes through the pool like parallel
                # tasks so their chunks are yielded while it runs.
                task = tasks[0]
                config, ctx = prepare_task(loop, task, callbacks, context, store)
                try:
                    run_task(task, config, ctx, read_fresh)
                    after_task(loop, task, handler, config)
                    # Its writes are stored with the step's checkpoint, in
                    # one transaction (finish() follows at once).
                    loop.record(task, save=False)
                except GraphInterrupt:
                    loop.record(task)
                except ParentCommand as exc:  # for the graph above: not this task's error
                    error = exc
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    loop.record(task, exc)
                    error = exc
                yield from _drain(loop)
            elif tasks:
                futures: dict[concurrent.futures.Future, tuple[Task, dict]] = {}
                for task in tasks:
                    config, ctx = prepare_task(loop, task, callbacks, context, store)
                    fut = executor.submit(contextvars.copy_context().run, run_task, task, config, ctx, read_fresh)
                    futures[fut] = (task, config)
                pending = set(futures)
                position = {fut: i for i, fut in enumerate(futures)}
                while pending:
                    done, pending = concurrent.futures.wait(
                        pending, timeout=0.05, return_when=concurrent.futures.FIRST_COMPLETED
                    )
                    ahead = running_ahead(done, pending, position)
                    if ahead:
                        caught_up, _ = concurrent.futures.wait(ahead, timeout=ORDER_GRACE_SECONDS)
                        done, pending = done | caught_up, pending - caught_up
                    for fut in in_task_order(done, position):
                        task, config = futures[fut]
                        # Every finished task is recorded, also after a
                        # sibling's failure in the same round.
                        failure = _task_done(loop, task, config, handler, fut.exception())
                        error = error or failure
                    yield from _drain(loop)
            if error is not None:
                raise error
            loop.finish()
            yield from _drain(loop)


async def stream_async(
    loop: ThreadLoop, input: Any, *, context: Any = None, store: Any = None
) -> AsyncIterator[tuple[str, Any]]:
    """Async twin of :func:`stream_sync`; nodes run as asyncio tasks (sync
    nodes in the default executor). Checkpoint I/O goes through a thread."""
    _write_behind_if_async(loop)
    try:
        async for item in _stream_async(loop, input, context=context, store=store):
            yield item
    finally:
        try:
            if loop.unstored:
                await asyncio.to_thread(loop.flush)
        finally:
            if loop.write_behind is not None:
                await asyncio.to_thread(loop.write_behind.wait)


async def _stream_async(
    loop: ThreadLoop, input: Any, *, context: Any = None, store: Any = None
) -> AsyncIterator[tuple[str, Any]]:
    await asyncio.to_thread(loop.load, input)
    for item in _drain(loop):
        yield item
    callbacks, handler = task_callbacks(loop)
    if handler is not None and input is not None:
        handler.mark_seen(input)
    while loop.status == "pending":
        tasks = await asyncio.to_thread(loop.plan) if loop.saver else loop.plan()
        for item in _drain(loop):
            yield item
        if loop.status != "pending":
            break
        read_fresh = make_fresh_reader(loop.channels)
        error: Optional[BaseException] = None
        running: dict[asyncio.Task, tuple[Task, dict]] = {}
        for task in tasks:
            config, ctx = prepare_task(loop, task, callbacks, context, store)
            running[asyncio.ensure_future(arun_task(task, config, ctx, read_fresh))] = (task, config)
        pending = set(running)
        position = {fut: i for i, fut in enumerate(running)}
        while pending:
            done, pending = await asyncio.wait(pending, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
            ahead = running_ahead(done, pending, position)
            if ahead:
                caught_up, _ = await asyncio.wait(ahead, timeout=ORDER_GRACE_SECONDS)
                done, pending = done | caught_up, pending - caught_up
            for fut in in_task_order(done, position):
                task, config = running[fut]
                failure = _task_done(loop, task, config, handler, fut.exception())
                error = error or failure
            for item in _drain(loop):
                yield item
        if error is not None:
            raise error
        if loop.saver:
            await asyncio.to_thread(loop.finish)
        else:
            loop.finish()
        for item in _drain(loop):
            yield item
