"""lgdist's Celery tasks. Each validates its payload, then hands over to the
coordinator. Names are stable (``lgdist.*``): they are the wire protocol."""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import Celery
from pydantic import ValidationError

from lgdist.distributed import coordinator
from lgdist.distributed.backend import get_backend
from lgdist.distributed.messages import FinishStepMessage, ResumeMessage, RunNodeMessage, StartMessage
from lgdist.types import Command

log = logging.getLogger("lgdist.tasks")


def _too_big(backend: Any, payload: Any) -> bool:
    try:
        size = len(json.dumps(payload, default=str))
    except (TypeError, ValueError):
        return True
    return size > backend.settings.max_payload_bytes


def _invalid(name: str, payload: Any, error: Exception) -> dict:
    text = f"malformed {name} message rejected: {error}"
    log.error(text)
    return {"status": "rejected", "error": text}


def handle_resume(backend: Any, payload: dict) -> dict:
    """``lgdist.resume``: resume an interrupted (or failed) thread."""
    thread_id = payload.get("thread_id") if isinstance(payload, dict) else None
    try:
        if _too_big(backend, payload):
            raise ValueError(f"payload larger than {backend.settings.max_payload_bytes} bytes")
        msg = ResumeMessage.model_validate(payload)
    except (ValidationError, ValueError) as exc:
        result = _invalid("lgdist.resume", payload, exc)
        # Make the rejection visible on the thread's runs without touching
        # the thread itself.
        if isinstance(thread_id, str) and thread_id and len(thread_id) <= 255:
            thread = backend.runs.get_thread(thread_id)
            if thread is not None:
                run = backend.runs.create_run(
                    thread_id=thread_id, graph=thread["graph"], kind="resume", input=None,
                    options={}, status="error", error=result["error"],
                )
                backend.bus.end(run.run_id, "error", result["error"])
                result["run_id"] = run.run_id
        return result
    thread = backend.runs.get_thread(msg.thread_id)
    graph = msg.graph or (thread["graph"] if thread else None)
    if graph is None:
        return _invalid("lgdist.resume", payload, LookupError(f"thread {msg.thread_id!r} has no runs; nothing to resume"))
    command = None
    if msg.resume is not None or (msg.update is not None and msg.as_node is None) or msg.goto:
        command = Command(
            resume=msg.resume,
            update=msg.update if msg.as_node is None else None,
            goto=msg.goto or (),
        )
    options = {"stream_modes": msg.stream_mode}
    if msg.as_node is not None:
        options.update(as_node=msg.as_node, update=msg.update)
    run = backend.runs.create_run(
        thread_id=msg.thread_id, graph=graph, kind="resume", input=command, options=options, run_id=msg.run_id
    )
    if run.status != "pending":
        return {"status": "duplicate", "run_id": run.run_id}
    if not backend.runs.claim_thread(msg.thread_id, graph, run.run_id, ("interrupted", "error")):
        status = (backend.runs.get_thread(msg.thread_id) or {}).get("status", "unknown")
        error = f"thread {msg.thread_id!r} is not interrupted (status: {status}); nothing to resume"
        backend.runs.set_run(run.run_id, status="error", error=error)
        backend.bus.end(run.run_id, "error", error)
        return {"status": "error", "run_id": run.run_id, "error": error}
    coordinator.start_run(backend, run.run_id)
    return {"status": "started", "run_id": run.run_id}


def register_tasks(app: Celery) -> None:
    """Register lgdist's tasks on ``app``."""
    settings = app.conf.lgdist_settings
    node_limits: dict = {}
    if settings.task_time_limit:
        node_limits = {"soft_time_limit": settings.task_time_limit, "time_limit": settings.task_time_limit + 5}

    @app.task(name="lgdist.start", bind=True, acks_late=True)
    def start(self: Any, **payload: Any) -> dict:
        backend = get_backend(self.app)
        try:
            msg = StartMessage.model_validate(payload)
        except ValidationError as exc:
            return _invalid("lgdist.start", payload, exc)
        coordinator.start_run(backend, msg.run_id)
        return {"status": "started", "run_id": msg.run_id}

    @app.task(name="lgdist.resume", bind=True, acks_late=True)
    def resume(self: Any, *args: Any, **payload: Any) -> dict:
        if args:  # positional payloads are accepted as one dict argument
            payload = args[0] if len(args) == 1 and isinstance(args[0], dict) else {"_args": list(args)}
        return handle_resume(get_backend(self.app), payload)

    @app.task(name="lgdist.run_node", bind=True, acks_late=True, **node_limits)
    def run_node(self: Any, **payload: Any) -> dict:
        try:
            msg = RunNodeMessage.model_validate(payload)
        except ValidationError as exc:
            return _invalid("lgdist.run_node", payload, exc)
        return coordinator.run_node(get_backend(self.app), msg, worker=self.request.hostname)

    @app.task(name="lgdist.finish_step", bind=True, acks_late=True)
    def finish_step(self: Any, *results: Any, **payload: Any) -> dict:
        try:
            msg = FinishStepMessage.model_validate(payload)
        except ValidationError as exc:
            return _invalid("lgdist.finish_step", payload, exc)
        coordinator.finish_step(get_backend(self.app), msg)
        return {"status": "ok", "checkpoint_id": msg.checkpoint_id}

    @app.task(name="lgdist.sweep", bind=True)
    def sweep(self: Any, older_than: Any = None) -> dict:
        threads = coordinator.sweep(get_backend(self.app), float(older_than) if older_than is not None else None)
        return {"rescheduled": threads}

    app.conf.beat_schedule = {
        "lgdist-sweep": {"task": "lgdist.sweep", "schedule": max(10.0, settings.stall_seconds / 2)}
    }
