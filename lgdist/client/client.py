"""``Client``: the Python entry point to the distributed backend."""

from __future__ import annotations

import time
import uuid
from typing import Any, Iterator, Optional, Sequence, Union

from lgdist.distributed.app import create_app
from lgdist.distributed.backend import Backend
from lgdist.distributed.coordinator import WORKER_MODE, claim_thread, publish_end, start_next_enqueued
from lgdist.distributed.events import END_MODE, SUBGRAPH_MODE
from lgdist.distributed.failure import run_failed_error, trusted_packages
from lgdist.distributed.runs import FINAL
from lgdist.distributed.transient import TRANSIENT_ERRORS
from lgdist.errors import RunFailedError, RunNotFoundError, ThreadBusyError
from lgdist.settings import Settings, get_settings
from lgdist.types import Command, StateSnapshot


class Client:
    """Talks to workers through the broker and reads state from the store.

    Settings come from ``LGDIST_*`` environment variables unless given.
    """

    def __init__(self, settings: Optional[Settings] = None, *, app: Any = None) -> None:
        self.settings = settings or get_settings()
        self.app = app or create_app(self.settings)
        self.backend = Backend(self.settings, self.app)

    # -- runs ------------------------------------------------------------------------
    def submit(
        self,
        graph: str,
        input: Any,
        thread_id: Optional[str] = None,
        *,
        config: Optional[dict] = None,
        stream_mode: Union[str, Sequence[str]] = "values",
        interrupt_before: Any = None,
        interrupt_after: Any = None,
        multitask_strategy: Optional[str] = None,
        subgraphs: bool = False,
        context: Any = None,
    ) -> str:
        """Start a run of ``graph`` on ``thread_id`` (new thread if None);
        returns the run id. A busy thread raises ``ThreadBusyError`` under the
        ``reject`` strategy or queues the run under ``enqueue``."""
        thread_id = thread_id or uuid.uuid4().hex
        modes = [stream_mode] if isinstance(stream_mode, str) else list(stream_mode)
        config = config or {}
        options = {
            "stream_modes": modes,
            "interrupt_before": interrupt_before,
            "interrupt_after": interrupt_after,
            "recursion_limit": config.get("recursion_limit"),
            "configurable": {
                k: v for k, v in (config.get("configurable") or {}).items()
                if k not in ("thread_id", "checkpoint_ns") and isinstance(v, (str, int, float, bool, type(None)))
            },
            # Scalars only, as checkpoint metadata keeps only those.
            "metadata": {
                k: v for k, v in (config.get("metadata") or {}).items() if isinstance(v, (str, int, float, bool))
            },
        }
        if subgraphs:
            options["subgraphs"] = True
        if context is not None:
            # The run's context (coerced to the graph's context_schema on
            # the worker); stored with the run, so it must serialize.
            options["context"] = context
        strategy = multitask_strategy or self.settings.multitask_strategy
        options["multitask_strategy"] = strategy
        runs = self.backend.runs
        # Answering an interrupt (or continuing after a breakpoint) resumes the thread.
        kind = "resume" if input is None or (isinstance(input, Command) and input.resume is not None) else "start"
        run = runs.create_run(thread_id=thread_id, graph=graph, kind=kind, input=input, options=options)
        if claim_thread(self.backend, thread_id, graph, run.run_id, ("idle", "interrupted", "error")):
            self._send("lgdist.start", {"v": 1, "run_id": run.run_id})
        elif strategy == "reject":
            active = (runs.get_thread(thread_id) or {}).get("active_run_id")
            runs.set_run(run.run_id, status="error", error=f"thread {thread_id!r} is busy with run {active}")
            raise ThreadBusyError(
                f"thread {thread_id!r} already has an active run ({active}); wait for it, cancel it, "
                "or submit with multitask_strategy='enqueue'"
            )
        else:
            # The active run may have ended while we queued: start us if so.
            start_next_enqueued(self.backend, thread_id)
        return run.run_id

    def resume(
        self,
        thread_id: str,
        resume: Any = None,
        *,
        update: Optional[dict] = None,
        as_node: Optional[str] = None,
        goto: Optional[str] = None,
        stream_mode: Union[str, Sequence[str]] = "values",
    ) -> str:
        """Publish a ``lgdist.resume`` message (what any program can do with
        ``send_task``); returns the id the resumed run will have."""
        run_id = uuid.uuid4().hex
        payload = {
            "v": 1,
            "thread_id": thread_id,
            "run_id": run_id,
            "resume": resume,
            "update": update,
            "as_node": as_node,
            "goto": goto,
            "stream_mode": [stream_mode] if isinstance(stream_mode, str) else list(stream_mode),
        }
        self._send("lgdist.resume", {k: v for k, v in payload.items() if v is not None})
        return run_id

    def _send(self, name: str, kwargs: dict) -> None:
        self.app.send_task(name, kwargs=kwargs, queue=self.settings.default_queue)

    def get_run(self, run_id: str) -> dict:
        run = self.backend.runs.get_run(run_id)
        if run is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        return run.as_dict()

    def wait(self, run_id: str, timeout: float = 60.0, poll: float = 0.05) -> dict:
        """Block until the run ends; returns the run record. Keeps polling
        through a database restart (until the timeout)."""
        deadline = time.monotonic() + timeout
        status = "unknown"
        while True:
            try:
                run = self.backend.runs.get_run(run_id)
                done = run is not None and run.status in FINAL and (self._released(run) or time.monotonic() > deadline)
            except TRANSIENT_ERRORS:
                run, done = None, False
                status = "unknown: the run database is unreachable"
            else:
                status = run.status if run else "unknown"
            if done:
                return run.as_dict()  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} did not finish within {timeout}s (status: {status})")
            time.sleep(poll)

    def _released(self, run: Any) -> bool:
        """Whether the run's thread is free of it (a run ends, then frees its
        thread: waiting for both lets the caller resume at once)."""
        thread = self.backend.runs.get_thread(run.thread_id)
        return thread is None or thread["active_run_id"] != run.run_id

    def _final_status(self, run_id: str) -> Optional[tuple[str, Optional[str]]]:
        run = self.backend.runs.get_run(run_id)
        if run is None or run.status not in FINAL:
            return None
        return run.status, run.error

    def events(self, run_id: str, timeout: Optional[float] = None) -> Iterator[tuple[str, Any]]:
        """Every stream event of a run, ending with ``("__end__", {...})``.
        If the stream loses its end (Redis restarted, a worker died as the
        run ended), the end comes from the run record instead."""
        return self.backend.bus.read(run_id, timeout=timeout, final_status=lambda: self._final_status(run_id))

    def stream(
        self,
        graph: str,
        input: Any,
        thread_id: Optional[str] = None,
        *,
        stream_mode: Union[str, Sequence[str]] = "values",
        timeout: Optional[float] = 300,
        subgraphs: bool = False,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Submit and yield chunks exactly as the local runtime's ``stream``
        (with ``subgraphs=True``, as ``(namespace, chunk)`` including the
        chunks of subgraphs the nodes ran)."""
        run_id = self.submit(graph, input, thread_id, stream_mode=stream_mode, subgraphs=subgraphs, **kwargs)
        yield from self.stream_run(run_id, stream_mode=stream_mode, timeout=timeout, subgraphs=subgraphs)

    def stream_run(
        self,
        run_id: str,
        *,
        stream_mode: Union[str, Sequence[str]] = "values",
        timeout: Optional[float] = 300,
        subgraphs: bool = False,
    ) -> Iterator[Any]:
        single = isinstance(stream_mode, str)
        modes = {stream_mode} if single else set(stream_mode)
        for mode, chunk in self.events(run_id, timeout=timeout):
            if mode == END_MODE:
                if chunk["status"] == "error":
                    raise self._run_failed(run_id, chunk.get("error"))
                return
            ns: tuple = ()
            if mode == SUBGRAPH_MODE:
                ns, mode, chunk = tuple(chunk["ns"]), chunk["mode"], chunk["chunk"]
                if not subgraphs:
                    continue
            if mode not in modes:
                continue
            if subgraphs:
                yield (ns, chunk) if single else (ns, mode, chunk)
            else:
                yield chunk if single else (mode, chunk)

    def _run_failed(self, run_id: str, error: Optional[str]) -> RunFailedError:
        """The error for a failed run: also an instance of the node's own
        exception class when it is a builtin or from the graph's package."""
        run = self.backend.runs.get_run(run_id)
        target = self.backend.registry.entries.get(run.graph) if run is not None else None
        return run_failed_error(error, trusted_packages(target))

    def workers_of(self, run_id: str) -> list[dict]:
        """Which worker ran each node of a finished run, in order."""
        return [c for m, c in self.events(run_id, timeout=5) if m == WORKER_MODE]

    def cancel(self, run_id: str) -> bool:
        """Stop a run after its current step (or before it starts)."""
        runs = self.backend.runs
        run = runs.get_run(run_id)
        if run is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        if runs.set_run(run_id, expect=("pending",), status="cancelled"):
            runs.release_thread(run.thread_id, run_id, "idle")
            publish_end(self.backend, run_id, "cancelled")
            return True
        return runs.set_run(run_id, expect=("running",), status="cancelled")

    def runs(self, thread_id: Optional[str] = None, limit: int = 100) -> list[dict]:
        return [r.as_dict() for r in self.backend.runs.list_runs(thread_id, limit)]

    # -- state -----------------------------------------------------------------------
    def _graph(self, graph: str) -> Any:
        from lgdist.graph.compiled import CompiledStateGraph

        compiled = self.backend.registry.get(graph)
        return CompiledStateGraph(builder=compiled.builder, spec=compiled.spec, checkpointer=self.backend.saver)

    def _thread_config(self, thread_id: str, checkpoint_id: Optional[str] = None) -> dict:
        configurable = {"thread_id": thread_id}
        if checkpoint_id:
            configurable["checkpoint_id"] = checkpoint_id
        return {"configurable": configurable}

    def get_state(self, graph: str, thread_id: str, checkpoint_id: Optional[str] = None, *, subgraphs: bool = False) -> StateSnapshot:
        return self._graph(graph).get_state(self._thread_config(thread_id, checkpoint_id), subgraphs=subgraphs)

    def get_state_history(self, graph: str, thread_id: str, **kwargs: Any) -> list[StateSnapshot]:
        return list(self._graph(graph).get_state_history(self._thread_config(thread_id), **kwargs))

    def update_state(self, graph: str, thread_id: str, values: Any, as_node: Optional[str] = None, checkpoint_id: Optional[str] = None) -> dict:
        return self._graph(graph).update_state(self._thread_config(thread_id, checkpoint_id), values, as_node)
