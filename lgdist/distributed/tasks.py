"""lgdist's Celery tasks. Each validates its payload, then hands over to the
coordinator. Names are stable (``lgdist.*``): they are the wire protocol.

Anything can publish to these names (``send_task``, Flower's API), so a task
checks its message before touching any state: an unknown field, a missing
one, a wrong type, a version this worker does not speak, positional
arguments or an oversized payload is *rejected* - the result says why, the
worker logs it, and no run, thread or checkpoint changes. (A body in any
serializer but JSON never reaches a task: ``accept_content`` refuses it.)

Every task is idempotent, so an outage (database or broker restarting) is
retried with backoff instead of failing the run; a task that fails for good
ends its run as an error instead of leaving it running.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal, Optional

from celery import Celery, Task
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lgdist.distributed import coordinator, lifecycle, nodes, run_end, run_start, step_finish
from lgdist.distributed.backend import Backend, get_backend
from lgdist.distributed.lifecycle import RunStatus
from lgdist.distributed.messages import PROTOCOL_VERSION, FinishStepMessage, ResumeMessage, RunNodeMessage, StartMessage
from lgdist.distributed.transient import RETRY_OPTIONS
from lgdist.errors import GraphNotRegisteredError, NodeFailedError
from lgdist.types import Command

log = logging.getLogger("lgdist.tasks")


class SweepMessage(BaseModel):
    """``lgdist.sweep``: beat sends it without arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    # Not below one second: a sweep that calls every busy thread stalled
    # would run the steps of healthy runs twice.
    older_than: Optional[float] = Field(default=None, ge=1.0, allow_inf_nan=False)


def _too_big(backend: Any, payload: Any) -> bool:
    try:
        size = len(json.dumps(payload, default=str))
    except (TypeError, ValueError):
        return True
    return size > backend.settings.max_payload_bytes


def _invalid(name: str, payload: Any, error: Any) -> dict:
    text = f"malformed {name} message rejected: {error}"
    log.error(text)
    return {"status": "rejected", "error": text}


def _check(name: str, backend: Any, model: type[BaseModel], args: tuple, payload: dict) -> tuple[Any, Optional[dict]]:
    """The validated message, or None and the rejection."""
    if args:
        return None, _invalid(name, payload, f"positional arguments are not accepted (got {len(args)}); send kwargs")
    if _too_big(backend, payload):
        return None, _invalid(name, {}, f"payload larger than {backend.settings.max_payload_bytes} bytes")
    try:
        return model.model_validate(payload), None
    except ValidationError as exc:
        version = payload.get("v", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION or type(version) is not int:
            # Say it plainly: a producer speaking another protocol version.
            return None, _invalid(
                name, payload, f"unsupported message version {version!r} (this worker speaks {PROTOCOL_VERSION}): {exc}"
            )
        return None, _invalid(name, payload, exc)


def _error_run_for(backend: Any, thread_id: Any, error: str) -> Optional[str]:
    """Make a rejected resume visible on the thread's runs without touching
    the thread itself."""
    if not (isinstance(thread_id, str) and thread_id and len(thread_id) <= 255):
        return None
    thread = backend.runs.get_thread(thread_id)
    if thread is None:
        return None
    run = lifecycle.record_refusal(backend.runs, thread_id=thread_id, graph=thread["graph"], kind="resume", error=error)
    run_end.publish_end(backend, run.run_id, "error", error)
    return run.run_id


def handle_resume(backend: Any, payload: Any, args: tuple = ()) -> dict:
    """``lgdist.resume``: resume an interrupted (or failed) thread."""
    if not isinstance(payload, dict):
        payload = {"_payload": payload}
    thread_id = payload.get("thread_id")
    msg, result = _check("lgdist.resume", backend, ResumeMessage, args, payload)
    if msg is None:
        run_id = _error_run_for(backend, thread_id, result["error"])  # type: ignore[index]
        return {**result, "run_id": run_id} if run_id else result  # type: ignore[dict-item]
    thread = backend.runs.get_thread(msg.thread_id)
    if thread is None:
        return _invalid("lgdist.resume", payload, LookupError(f"thread {msg.thread_id!r} has no runs; nothing to resume"))
    graph = thread["graph"]
    if msg.graph is not None and msg.graph != graph:
        # The thread's graph is fixed by its history: a resume naming another
        # one (unregistered or not) must not re-label the thread.
        error = f"lgdist.resume names graph {msg.graph!r}, but thread {msg.thread_id!r} runs graph {graph!r}"
        try:
            backend.registry.get(msg.graph)
        except GraphNotRegisteredError as exc:
            error += f" ({exc})"
        result = _invalid("lgdist.resume", payload, error)
        run_id = _error_run_for(backend, msg.thread_id, result["error"])
        return {**result, "run_id": run_id} if run_id else result
    command = None
    if msg.resume is not None or (msg.update is not None and msg.as_node is None) or msg.goto:
        command = Command(
            resume=msg.resume,
            update=msg.update if msg.as_node is None else None,
            goto=msg.goto or (),
        )
    options = {"stream_modes": msg.stream_mode, "durability": msg.durability}
    if msg.as_node is not None:
        options.update(as_node=msg.as_node, update=msg.update)
    # Creating the run and claiming the thread is one transaction, and both
    # are idempotent per run id: a redelivered or duplicated resume finds
    # its own run holding the thread and goes on starting it.
    run, claimed = lifecycle.submit(
        backend.runs, thread_id=msg.thread_id, graph=graph, kind="resume", input=command, options=options,
        run_id=msg.run_id, claim_from=lifecycle.RESUMABLE,
    )  # fmt: skip
    if run.thread_id != msg.thread_id or run.status in lifecycle.FINAL:
        return {"status": "duplicate", "run_id": run.run_id}
    if not claimed and run.status == RunStatus.PENDING:
        thread = backend.runs.get_thread(msg.thread_id) or {}
        status = thread.get("status", "unknown")
        error = f"thread {msg.thread_id!r} is not interrupted (status: {status}); nothing to resume"
        if lifecycle.end(backend.runs, run.run_id, RunStatus.ERROR, error=error, expect=(RunStatus.PENDING,)):
            run_end.publish_end(backend, run.run_id, RunStatus.ERROR, error)
        return {"status": "error", "run_id": run.run_id, "error": error}
    run_start.start_run(backend, run.run_id)
    return {"status": "started", "run_id": run.run_id}


def raise_node_failures(failures: list) -> None:
    """A node that failed in this task: its error is saved as the task's
    outcome and ends the run; raising it too makes the task a failure in
    Flower (and in any result reader)."""
    if failures:
        node, error = failures[-1]
        raise NodeFailedError(f"node {node!r} failed: {error}")


class LgdistTask(Task):
    """Base of lgdist's tasks: retried through outages (they are idempotent),
    and a run whose task fails for good ends as an error run."""

    acks_late = True
    autoretry_for = RETRY_OPTIONS["autoretry_for"]
    retry_backoff = RETRY_OPTIONS["retry_backoff"]
    retry_backoff_max = RETRY_OPTIONS["retry_backoff_max"]
    retry_jitter = RETRY_OPTIONS["retry_jitter"]
    max_retries = RETRY_OPTIONS["max_retries"]

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # Runs in the pool process, or for a hard time limit in the worker's
        # main process: a backend of its own, so that no database connection
        # is left behind for the pool processes it forks later.
        backend = Backend(self.app.conf.lgdist_settings, self.app)
        try:
            step_finish.task_failed(backend, self.name, kwargs, exc)
        except Exception:  # noqa: BLE001 - reported, the sweeper retries later
            log.exception("%s[%s] failed and its run could not be ended", self.name, task_id)
        finally:
            if "saver" in backend.__dict__:
                backend.saver.engine.dispose()


def register_tasks(app: Celery) -> None:
    """Register lgdist's tasks on ``app``."""
    settings = app.conf.lgdist_settings
    node_limits: dict = {}
    if settings.task_time_limit:
        node_limits = {"soft_time_limit": settings.task_time_limit, "time_limit": settings.task_time_limit + 5}

    @app.task(name="lgdist.start", bind=True, base=LgdistTask)
    def start(self: Any, *args: Any, **payload: Any) -> dict:
        backend = get_backend(self.app)
        msg, rejection = _check("lgdist.start", backend, StartMessage, args, payload)
        if msg is None:
            return rejection  # type: ignore[return-value]
        backend.hostname = self.request.hostname or backend.hostname  # the run records the worker's name
        with nodes.node_failures() as failures:  # its first one-task steps may run right here
            result = run_start.start_run(backend, msg.run_id)
        raise_node_failures(failures)
        return result

    @app.task(name="lgdist.resume", bind=True, base=LgdistTask)
    def resume(self: Any, *args: Any, **payload: Any) -> dict:
        if len(args) == 1 and isinstance(args[0], dict) and not payload:
            args, payload = (), args[0]  # a payload sent as one dict argument
        backend = get_backend(self.app)
        backend.hostname = self.request.hostname or backend.hostname  # the run records the worker's name
        with nodes.node_failures() as failures:
            result = handle_resume(backend, payload, args)
        raise_node_failures(failures)
        return result

    @app.task(name="lgdist.run_node", bind=True, base=LgdistTask, **node_limits)
    def run_node(self: Any, *args: Any, **payload: Any) -> dict:
        backend = get_backend(self.app)
        msg, rejection = _check("lgdist.run_node", backend, RunNodeMessage, args, payload)
        if msg is None:
            return rejection  # type: ignore[return-value]
        with nodes.node_failures() as failures:
            result = nodes.run_node(
                backend, msg, worker=self.request.hostname, retries=self.request.retries or 0, message_id=self.request.id,
                redelivered=bool((self.request.delivery_info or {}).get("redelivered")),
            )  # fmt: skip
        raise_node_failures(failures)
        return result

    @app.task(name="lgdist.finish_step", bind=True, base=LgdistTask)
    def finish_step(self: Any, *args: Any, **payload: Any) -> dict:
        backend = get_backend(self.app)
        msg, rejection = _check("lgdist.finish_step", backend, FinishStepMessage, args, payload)
        if msg is None:
            return rejection  # type: ignore[return-value]
        # A redelivery (its worker died) or a retry (an outage): an earlier
        # delivery of this callback is over, maybe halfway through.
        again = bool((self.request.delivery_info or {}).get("redelivered")) or bool(self.request.retries)
        with nodes.node_failures() as failures:  # the one-task step after it may run right here
            result = step_finish.finish_step(backend, msg, worker=self.request.hostname, again=again)
        raise_node_failures(failures)
        return {**result, "checkpoint_id": msg.checkpoint_id}

    @app.task(name="lgdist.sweep", bind=True, base=LgdistTask, acks_late=False)
    def sweep(self: Any, *args: Any, **payload: Any) -> dict:
        backend = get_backend(self.app)
        msg, rejection = _check("lgdist.sweep", backend, SweepMessage, args, payload)
        if msg is None:
            return rejection  # type: ignore[return-value]
        return {"rescheduled": coordinator.sweep(backend, msg.older_than)}

    every = max(1.0, settings.stall_seconds / 2)
    app.conf.beat_schedule = {
        # A sweep that waited in a queue longer than the period is dropped:
        # the next one is on its way, and a pile of them helps nobody.
        "lgdist-sweep": {"task": "lgdist.sweep", "schedule": every, "options": {"expires": every}}
    }
