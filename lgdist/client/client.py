"""``Client``: the Python entry point to the distributed backend."""

from __future__ import annotations

import time
import uuid
from typing import Any, Iterator, Optional, Sequence, Union

from lgdist.constants import INTERRUPT
from lgdist.distributed import lifecycle
from lgdist.distributed.app import create_app
from lgdist.distributed.backend import Backend
from lgdist.distributed.coordinator import WORKER_MODE
from lgdist.distributed.run_end import fail_pending_run, publish_end, resting_status, start_next_enqueued
from lgdist.distributed.events import END_MODE, FROM_RECORD, SUBGRAPH_MODE
from lgdist.distributed.failure import run_failed_error, trusted_packages
from lgdist.distributed.filesystem_broker import stall_report
from lgdist.distributed.lifecycle import FINAL, RunStatus, ThreadStatus
from lgdist.distributed.transient import TRANSIENT_ERRORS
from lgdist.errors import (
    InvalidThreadIdError,
    RunFailedError,
    RunNotFoundError,
    ThreadBusyError,
    ThreadNotFoundError,
)
from lgdist.settings import Settings, get_settings
from lgdist.types import Command, StateSnapshot

__all__ = ["Client", "RunFailedError", "check_thread_id"]


def check_thread_id(thread_id: Any) -> str:
    """The thread id, if it can be stored; else ``InvalidThreadIdError``."""
    if not isinstance(thread_id, str) or not thread_id:
        raise InvalidThreadIdError(f"a thread id must be a non-empty string, not {thread_id!r}")
    if len(thread_id) > 255:
        raise InvalidThreadIdError(f"a thread id has at most 255 characters (got {len(thread_id)})")
    if "\x00" in thread_id:
        raise InvalidThreadIdError("a thread id cannot contain a NUL character")
    return thread_id


def _without_interrupts(values: Any) -> Any:
    if isinstance(values, dict) and INTERRUPT in values:
        return {k: v for k, v in values.items() if k != INTERRUPT}
    return values


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
        durability: Optional[str] = "async",
    ) -> str:
        """Start a run of ``graph`` on ``thread_id`` (new thread if None);
        returns the run id. A busy thread raises ``ThreadBusyError`` under the
        ``reject`` strategy or queues the run under ``enqueue``.
        ``durability`` ("async", the default as in LangGraph, "sync" or
        "exit"; None means the default) says when the workers store a slice
        of steps they run in one task (see ``lgdist.distributed.slice_store``)."""
        if durability not in (None, "sync", "async", "exit"):
            raise ValueError(f"durability must be 'sync', 'async' or 'exit', not {durability!r}")
        thread_id = uuid.uuid4().hex if thread_id is None else check_thread_id(thread_id)
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
        options["durability"] = durability or "async"
        if context is not None:
            # The run's context (coerced to the graph's context_schema on
            # the worker); stored with the run, so it must serialize.
            options["context"] = context
        strategy = multitask_strategy or self.settings.multitask_strategy
        options["multitask_strategy"] = strategy
        # Answering an interrupt (or continuing after a breakpoint) resumes the thread.
        kind = "resume" if input is None or (isinstance(input, Command) and input.resume is not None) else "start"
        busy = f"thread {thread_id!r} already has an active run" if strategy == "reject" else None
        run, claimed = lifecycle.submit(
            self.backend.runs, thread_id=thread_id, graph=graph, kind=kind, input=input, options=options,
            busy_error=busy, thread_known=kind == "resume",  # a resume goes on with a thread that has run
        )
        if claimed:
            self._send_start(run)
        elif strategy == "reject":
            raise ThreadBusyError(
                f"{run.error}; wait for it, cancel it, or submit with multitask_strategy='enqueue'"
            )
        else:
            # The active run may have ended while we queued: start us if so.
            start_next_enqueued(self.backend, thread_id)
        return run.run_id

    def _send_start(self, run: Any) -> None:
        """Send the run's start message. If that fails, the run must not
        start later (the caller is told it failed): it ends as an error
        unless something started it meanwhile, in which case it runs."""
        try:
            self._send("lgdist.start", {"v": 1, "run_id": run.run_id})
        except BaseException as exc:
            error = f"run could not be submitted: the broker refused the start message ({type(exc).__name__}: {exc})"
            try:
                ended = fail_pending_run(self.backend, run, error)
            except Exception:  # noqa: BLE001 - the original error is the one to report
                ended = True
            current = self.backend.runs.get_run(run.run_id) if not ended else None
            if current is not None and current.status not in (RunStatus.PENDING, RunStatus.ERROR):
                return  # started by the sweeper meanwhile: it is running
            raise

    def resume(
        self,
        thread_id: str,
        resume: Any = None,
        *,
        update: Optional[dict] = None,
        as_node: Optional[str] = None,
        goto: Optional[str] = None,
        stream_mode: Union[str, Sequence[str]] = "values",
        durability: str = "async",
    ) -> str:
        """Publish a ``lgdist.resume`` message (what any program can do with
        ``send_task``); returns the id the resumed run will have. A thread
        that does not exist raises ``ThreadNotFoundError``. ``durability``
        as for :meth:`submit` (a message without it gets "async")."""
        if durability not in ("sync", "async", "exit"):
            raise ValueError(f"durability must be 'sync', 'async' or 'exit', not {durability!r}")
        if self.backend.runs.get_thread(check_thread_id(thread_id)) is None:
            raise ThreadNotFoundError(f"thread {thread_id!r} does not exist: nothing ran on it, so nothing can resume")
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
            "durability": durability,
        }
        self._send("lgdist.resume", {k: v for k, v in payload.items() if v is not None})
        return run_id

    def _send(self, name: str, kwargs: dict) -> None:
        # The client follows the run through its record and its stream,
        # never through a Celery result: none is stored or subscribed to.
        self.app.send_task(name, kwargs=kwargs, queue=self.settings.default_queue, ignore_result=True)

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
                raise TimeoutError(self._stalled(f"run {run_id} did not finish within {timeout}s (status: {status})"))
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

    def events(self, run_id: str, timeout: Optional[float] = None, *, live: bool = True) -> Iterator[tuple[str, Any]]:
        """Every stream event of a run, ending with ``("__end__", {...})``.
        If the stream loses its end (Redis restarted, a worker died as the
        run ended), the end comes from the run record instead. ``live=False``:
        all of them once the run is over (see ``EventBus.read``)."""
        try:
            yield from self.backend.bus.read(
                run_id, timeout=timeout, final_status=lambda: self._final_status(run_id), live=live
            )
        except TimeoutError as exc:
            raise TimeoutError(self._stalled(str(exc))) from None

    def _stalled(self, message: str) -> str:
        """A timeout's message, saying on the embedded broker where the
        messages are (still queued, or taken by a worker)."""
        if not self.settings.embedded:
            return message
        return f"{message}; {stall_report(self.settings.broker_folder())}"

    def stream(
        self,
        graph: str,
        input: Any,
        thread_id: Optional[str] = None,
        *,
        stream_mode: Union[str, Sequence[str]] = "values",
        timeout: Optional[float] = 300,
        subgraphs: bool = False,
        live: bool = True,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Submit and yield chunks exactly as the local runtime's ``stream``
        (with ``subgraphs=True``, as ``(namespace, chunk)`` including the
        chunks of subgraphs the nodes ran). ``live=False``: the chunks come
        once the run is over (for a caller that wants only its outcome)."""
        run_id = self.submit(graph, input, thread_id, stream_mode=stream_mode, subgraphs=subgraphs, **kwargs)
        yield from self.stream_run(run_id, stream_mode=stream_mode, timeout=timeout, subgraphs=subgraphs, live=live)

    def stream_run(
        self,
        run_id: str,
        *,
        stream_mode: Union[str, Sequence[str]] = "values",
        timeout: Optional[float] = 300,
        subgraphs: bool = False,
        live: bool = True,
    ) -> Iterator[Any]:
        """The chunks of run ``run_id`` as ``stream`` yields them. If the
        stream lost events (its end came from the run record), a ``values``
        stream still ends with the run's final state, read from the store
        (see :meth:`final_values`)."""
        single = isinstance(stream_mode, str)
        modes = {stream_mode} if single else set(stream_mode)
        last_values: Any = None
        for mode, chunk in self.events(run_id, timeout=timeout, live=live):
            if mode == END_MODE:
                if chunk["status"] == "error":
                    raise self._run_failed(run_id, chunk.get("error"))
                if "values" not in modes:
                    return
                stored = self.final_values(run_id, chunk, last_values)
                if stored is None:
                    return
                mode, chunk = "values", stored
            ns: tuple = ()
            if mode == SUBGRAPH_MODE:
                ns, mode, chunk = tuple(chunk["ns"]), chunk["mode"], chunk["chunk"]
                if not subgraphs:
                    continue
            elif mode == "values":
                last_values = chunk
            if mode not in modes:
                continue
            if subgraphs:
                yield (ns, chunk) if single else (ns, mode, chunk)
            else:
                yield chunk if single else (mode, chunk)

    def outcome(self, run_id: str, *, timeout: Optional[float] = 300) -> tuple[Any, list]:
        """A run's outcome once it is over: its last ``values`` chunk (every
        state key) and the interrupts it stopped at; a failed run raises its
        error. The run streams ``values`` and ``updates`` (``submit``'s
        ``stream_mode``). If the stream lost events, the outcome comes from
        the store (see :meth:`final_values`)."""
        latest, interrupts = None, []
        for mode, chunk in self.events(run_id, timeout=timeout, live=False):
            if mode == END_MODE:
                if chunk["status"] == "error":
                    raise self._run_failed(run_id, chunk.get("error"))
                stored = self.final_values(run_id, chunk, latest)
                if stored is not None:
                    latest = _without_interrupts(stored)
                    interrupts = list(stored.get(INTERRUPT, ())) if isinstance(stored, dict) else []
            elif mode == "values":
                latest = chunk
            elif mode == "updates" and isinstance(chunk, dict) and INTERRUPT in chunk:
                interrupts.extend(chunk[INTERRUPT])
        return latest, interrupts

    def final_values(self, run_id: str, end: dict, streamed: Any) -> Any:
        """For a run's end event: if a reader made it from the run record
        (``FROM_RECORD``: Redis lost the stream, or a worker stalled between
        storing the run's end and streaming it), the ``values`` chunk the
        run's last step streams — its thread's stored state (the latest
        checkpoint: the run's own unless a run queued behind it stored one
        since), with ``__interrupt__`` when it stopped at interrupts — unless
        it equals ``streamed``, the last one the reader got. Else None."""
        if not end.get(FROM_RECORD) or end.get("status") not in (RunStatus.SUCCESS, RunStatus.INTERRUPTED):
            return None
        run = self.backend.runs.get_run(run_id)
        if run is None:
            return None
        snapshot = self.get_state(run.graph, run.thread_id)
        if snapshot.metadata is None:
            return None
        values = snapshot.values
        if _without_interrupts(streamed) == values:
            return None
        if snapshot.interrupts and isinstance(values, dict):
            return {**values, INTERRUPT: tuple(snapshot.interrupts)}
        return values

    def _run_failed(self, run_id: str, error: Optional[str]) -> RunFailedError:
        """The error for a failed run: also an instance of the node's own
        exception class when it is a builtin or from the graph's package."""
        run = self.backend.runs.get_run(run_id)
        target = self.backend.registry.entries.get(run.graph) if run is not None else None
        return run_failed_error(error, trusted_packages(target))

    def workers_of(self, run_id: str) -> list[dict]:
        """Which worker ran each node of a finished run, in order."""
        return [c for m, c in self.events(run_id, timeout=5) if m == WORKER_MODE]

    def cancel(self, run_id: str, roll_back: Optional[dict] = None) -> bool:
        """Stop a run after its current step (or before it starts). With
        ``roll_back={"after": checkpoint_id}`` (None: the whole thread) the
        checkpoints the run stored after that one are dropped in the same
        transaction that frees the thread."""
        run = self.backend.runs.get_run(run_id)
        if run is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        # A run that never started leaves its thread as its checkpoint says
        # (still resumable at an interrupt); a running one stops after its
        # step, and the step's end releases the thread the same way.
        rest = resting_status(self.backend, run.thread_id, run.graph, ThreadStatus.IDLE)
        was = lifecycle.cancel(self.backend.runs, run_id, rest, roll_back=roll_back)
        if was == RunStatus.PENDING:
            publish_end(self.backend, run_id, RunStatus.CANCELLED)
            start_next_enqueued(self.backend, run.thread_id)
        return was is not None

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
        """Store a state update as a new checkpoint. Refused with
        ``ThreadBusyError`` while a run holds the thread: its next step
        would store a sibling of the update and the update would be lost.
        The thread is held for the update's duration."""
        runs = self.backend.runs
        check_thread_id(thread_id)
        holder = f"update-{uuid.uuid4().hex}"
        before = (runs.get_thread(thread_id) or {}).get("status") or ThreadStatus.IDLE
        before = ThreadStatus.IDLE if before == ThreadStatus.BUSY else before
        if not lifecycle.claim(runs, thread_id, graph, holder):
            active = (runs.get_thread(thread_id) or {}).get("active_run_id")
            raise ThreadBusyError(
                f"thread {thread_id!r} is busy with run {active}; update its state after the run ends (or cancel it)"
            )
        try:
            return self._graph(graph).update_state(self._thread_config(thread_id, checkpoint_id), values, as_node)
        finally:
            rest = resting_status(self.backend, thread_id, graph, ThreadStatus(before))
            lifecycle.release_ended(runs, thread_id, holder, rest)
