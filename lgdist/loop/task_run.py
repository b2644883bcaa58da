"""Running one task of a step, the part both drivers share: the callbacks
a task runs with (the ``messages`` stream forwarder), its config and
:class:`TaskContext`, and what follows a completed task."""

from __future__ import annotations

import time
from typing import Any, Optional

from lgdist.engine.execute import task_config
from lgdist.engine.task_context import TaskContext
from lgdist.engine.tasks import Task
from lgdist.run_tree import step_callbacks
from lgdist.loop.messages import StreamMessagesHandler
from lgdist.loop.thread_loop import ThreadLoop
from lgdist.runtime import ExecutionInfo, Runtime


def inherited_messages_handler(callbacks: Any) -> Optional[StreamMessagesHandler]:
    handlers = callbacks if isinstance(callbacks, list) else getattr(callbacks, "handlers", None) or []
    return next((h for h in handlers if isinstance(h, StreamMessagesHandler)), None)


def task_callbacks(loop: ThreadLoop) -> Any:
    """The run's callbacks plus, in ``messages`` mode, the token forwarder.

    A subgraph finds its root graph's forwarder among the callbacks it
    inherits and uses that one: the forwarder decides by each run's
    namespace whether the root stream wants it."""
    base = loop.config.get("callbacks")
    inherited = inherited_messages_handler(base)
    if inherited is not None:
        return base, inherited
    if "messages" not in loop.modes:
        return base, None
    own = loop.namespace

    def emit(item: Any, ns: tuple) -> None:
        loop.outbox.append(("messages", item) if ns == own else ("messages", item, ns))

    handler = StreamMessagesHandler(emit, subgraphs=loop.sink is not None, namespace=own)
    if base is None:
        return [handler], handler
    if isinstance(base, list):
        return [*base, handler], handler
    manager = base.copy()
    manager.add_handler(handler, inherit=True)
    return manager, handler


def prepare_task(loop: ThreadLoop, task: Task, callbacks: Any, context: Any, store: Any) -> tuple[dict, TaskContext]:
    """The config and context ``task`` runs with; custom chunks it writes go
    to the loop's outbox (a driver may redirect ``ctx.stream_writer``)."""
    callbacks = step_callbacks(callbacks, loop.step)
    config = task_config(loop.config, task, loop.step, checkpoint_ns=loop.checkpoint_ns, callbacks=callbacks)
    handler = inherited_messages_handler(config.get("callbacks"))
    if handler is not None and not task.hidden:
        handler.on_task_start(task.input, config["metadata"])

    def write(chunk: Any) -> None:
        loop.outbox.append(("custom", chunk))

    run_id = loop.config.get("run_id")
    info = ExecutionInfo(
        checkpoint_id=loop.checkpoint["id"],
        checkpoint_ns=config["configurable"]["checkpoint_ns"],
        task_id=task.id,
        thread_id=loop._thread_id() if loop.saver is not None else None,
        run_id=str(run_id) if run_id is not None else None,
        node_first_attempt_time=time.time(),
    )
    runtime = Runtime(context=context, store=store, stream_writer=write, execution_info=info)
    ctx = loop.task_context(task, config, stream_writer=write, runtime=runtime)
    return config, ctx


def after_task(loop: ThreadLoop, task: Task, handler: Optional[StreamMessagesHandler], config: dict) -> None:
    """A task completed: its messages written to state reach the ``messages`` stream."""
    if handler is not None and not task.hidden:
        handler.emit_node_output(dict(task.writes), config["metadata"])
