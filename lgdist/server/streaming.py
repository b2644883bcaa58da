"""A run's events as the API's server-sent events.

Workers publish ``(mode, chunk)`` pairs to the run's stream (Redis Streams,
or the run database); this module reads them and renames and reshapes them
as LangGraph's server does: a ``metadata`` event first, ``messages-tuple``
chunks as ``messages`` events, a last ``values`` event carrying
``__interrupt__`` when the run stopped at ``interrupt()``, and an ``error``
event when the run failed.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any, AsyncIterator, Iterator, Optional

from langchain_core.tracers.event_stream import _AstreamEventsCallbackHandler
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from lgdist.constants import INTERRUPT
from lgdist.distributed.coordinator import WORKER_MODE
from lgdist import serde
from lgdist.distributed.events import END_GRACE_SECONDS, END_MODE, FROM_RECORD, SUBGRAPH_MODE, RedisEventBus
from lgdist.distributed.transient import TRANSIENT_ERRORS
from lgdist.client.remote_events import TREE_MODES, RemoteRunTree
from lgdist.server.serialize import jsonable

STREAM_TIMEOUT_SECONDS = 24 * 3600.0
# How long a reader blocks on a silent stream before it asks the run record
# whether the run is over: the n-th silent read waits the n-th entry.
SILENT_BLOCK_MS = (2000, 4000, 8000, 10000)


class EventTranslator:
    """Turns worker events into ``(event, data)`` pairs for the requested
    API stream modes (``events`` aside: see :class:`RunTreeEvents`)."""

    def __init__(self, requested: list[str], subgraphs: bool = False) -> None:
        self.requested = set(requested)
        self.subgraphs = subgraphs
        self.values: Any = None
        self.interrupts: list = []
        self.status: Optional[str] = None
        self.error: Optional[str] = None
        # The run's end deleted its thread (on_completion="delete").
        self.thread_deleted = False

    def feed(self, mode: str, chunk: Any) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        if mode == WORKER_MODE:
            return out
        if mode == SUBGRAPH_MODE:
            # A subgraph's chunk: ``<mode>|<namespace>`` events, as LangGraph names them.
            if not self.subgraphs or not isinstance(chunk, dict):
                return out
            inner = EventTranslator(list(self.requested))
            suffix = "|".join(str(part) for part in chunk.get("ns") or ())
            for event, data in inner.feed(chunk.get("mode", ""), chunk.get("chunk")):
                out.append((f"{event}|{suffix}" if suffix else event, data))
            return out
        if mode == END_MODE:
            self.status, self.error = chunk.get("status"), chunk.get("error")
            self.thread_deleted = bool(chunk.get("thread_deleted"))
            if self.status == "error":
                out.append(("error", error_body(self.error)))
            return out
        if mode == "values":
            # The workers' last values chunk of an interrupted run carries
            # ``__interrupt__``, as LangGraph's does.
            if isinstance(chunk, dict) and INTERRUPT in chunk:
                self.interrupts = jsonable(list(chunk[INTERRUPT]))
                self.values = {k: v for k, v in chunk.items() if k != INTERRUPT}
            else:
                self.values = chunk
            if "values" in self.requested:
                out.append(("values", jsonable(chunk)))
        elif mode == "updates":
            if "updates" in self.requested:
                out.append(("updates", jsonable(chunk)))
        elif mode == "messages":
            message, meta = chunk if isinstance(chunk, (list, tuple)) else (chunk, {})
            if "messages-tuple" in self.requested:
                out.append(("messages", [jsonable(message), jsonable(meta)]))
            if "messages" in self.requested:
                msg = jsonable(message)
                out.append(("messages/metadata", {msg.get("id"): {"metadata": jsonable(meta)}}))
                out.append(("messages/complete", [msg]))
        elif mode == "tasks":
            if "tasks" in self.requested:
                out.append(("tasks", jsonable(chunk)))
        elif mode in self.requested:
            out.append((mode, jsonable(chunk)))
        return out

    def output(self) -> Any:
        """What ``/wait`` and ``/join`` return: the last values, with the
        interrupts the run stopped at."""
        if self.status == "error":
            return {"__error__": error_body(self.error)}
        values = jsonable(self.values) if self.values is not None else None
        if self.interrupts and isinstance(values, dict):
            return {**values, INTERRUPT: self.interrupts}
        return values


def error_body(text: Optional[str]) -> dict:
    """``{"error": <exception type>, "message": <text>}`` from a run's error."""
    text = text or "run failed"
    found = re.findall(r"\b([A-Z]\w*(?:Error|Exception|Exceeded|Interrupt))\b", text)
    return {"error": found[-1] if found else "RunError", "message": text}


def worker_events(service: Any, run_id: str) -> Iterator[tuple[str, Any]]:
    """Every event of the run, ending with its end event (from the run
    record if the stream lost it)."""
    return service.backend.bus.read(
        run_id, timeout=STREAM_TIMEOUT_SECONDS, final_status=lambda: service.final_status(run_id)
    )


async def redis_events(service: Any, run_id: str) -> AsyncIterator[tuple[str, Any]]:
    """The run's events from its Redis stream, read with asyncio (no thread
    held per reader), ending like ``EventBus.read``: at the end event, or
    from the run record when the stream went silent after the run ended.

    The run record is read only when the stream is silent, and less often
    the longer it stays silent (a run queued behind others is silent until
    a worker takes it): 50 waiting readers must not cost 50 queries a second."""
    import redis

    bus = service.backend.bus
    client = service.async_redis()
    key = bus._key(run_id)
    last = "0-0"
    block_ms = SILENT_BLOCK_MS[0]
    silent_reads = 0
    final_seen_at: Optional[float] = None
    while True:
        try:
            reply = await client.xread({key: last}, block=block_ms, count=500)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            await asyncio.sleep(0.5)
            reply = None
        if reply:
            final_seen_at, silent_reads = None, 0
            block_ms = SILENT_BLOCK_MS[0]
            for _, entries in reply:
                for entry_id, fields in entries:
                    last = entry_id
                    mode, chunk = serde.loads(fields[b"e"])
                    yield mode, chunk
                    if mode == END_MODE:
                        return
            continue
        try:
            final = await run_in_threadpool(service.final_status, run_id)
        except TRANSIENT_ERRORS:
            continue
        if final is None:
            final_seen_at = None
            silent_reads += 1
            block_ms = SILENT_BLOCK_MS[min(silent_reads, len(SILENT_BLOCK_MS) - 1)]
        elif final_seen_at is None:
            final_seen_at = time.monotonic()
            block_ms = int(END_GRACE_SECONDS * 1000)
        elif time.monotonic() - final_seen_at >= END_GRACE_SECONDS:
            yield END_MODE, {"status": final[0], "error": final[1], FROM_RECORD: True}
            return


def _events(service: Any, run_id: str) -> AsyncIterator[tuple[str, Any]]:
    if isinstance(service.backend.bus, RedisEventBus):
        return redis_events(service, run_id)
    return iterate_in_threadpool(worker_events(service, run_id))


async def api_events(
    service: Any, run_id: str, translator: EventTranslator, *, skip: int = 0, tree: "Optional[RunTreeEvents]" = None
) -> AsyncIterator[tuple[int, str, Any]]:
    """``(sequence number, event, data)`` for the run, after ``skip``;
    with ``tree``, the ``events`` mode too."""
    seq = 0
    async for mode, chunk in _events(service, run_id):
        events = [(mode, chunk)]
        if mode == END_MODE and chunk.get(FROM_RECORD):
            # The stream may have lost events: the run's final state, from the store.
            stored = await run_in_threadpool(service.client.final_values, run_id, chunk, translator.values)
            if stored is not None:
                events.insert(0, ("values", stored))
        for mode, chunk in events:
            pairs = translator.feed(mode, chunk)
            if tree is not None:
                pairs.extend(("events", e) for e in await tree.feed(mode, chunk))
            for event, data in pairs:
                seq += 1
                if seq > skip:
                    yield seq, event, data
            if mode == END_MODE:
                return


def metadata_event(run_id: str) -> dict:
    return {"run_id": run_id, "attempt": 1}


def new_stream_id() -> str:
    return f"{time.time_ns()}-{uuid.uuid4().hex[:6]}"


class _CollectedEvents(_AstreamEventsCallbackHandler):
    """``astream_events``' own handler (its event shapes, run ids and
    parent ids), keeping what it sends for the caller to take."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list = []

    def _send(self, event: Any, event_type: str) -> None:
        if self.root_event_filter.include_event(event, event_type):
            self.sent.append(event)

    def take(self) -> list[dict]:
        sent, self.sent = self.sent, []
        return [jsonable(dict(e)) for e in sent]


class RunTreeEvents:
    """The ``events`` stream mode: the run's LangChain run tree (the graph's
    run, its nodes' runs, the chat models and tools they called), rebuilt
    from the workers' ``debug``, ``messages`` and ``values`` events by the
    same :class:`RemoteRunTree` that serves ``RemoteGraph.astream_events``,
    and reported as ``astream_events`` (v2) reports a local run."""

    def __init__(self, run: Any, metadata: dict) -> None:
        self.run = run
        self.metadata = metadata
        self.handler: Optional[_CollectedEvents] = None
        self.tree: Optional[RemoteRunTree] = None

    async def _start(self) -> None:
        self.handler = _CollectedEvents()
        config = {
            "callbacks": [self.handler],
            "metadata": self.metadata,
            "run_name": self.run.graph,
            "run_id": _uuid(self.run.run_id),
        }
        self.tree = await RemoteRunTree.start(config, self.run.graph, self.run.input)

    async def feed(self, mode: str, chunk: Any) -> list[dict]:
        """The ``events`` that one worker event (of the root graph) makes."""
        if self.handler is None:
            await self._start()
        assert self.handler is not None and self.tree is not None
        if mode == END_MODE:
            if chunk.get("status") == "error":
                await self.tree.fail(RuntimeError(chunk.get("error") or "run failed"))
            else:
                await self.tree.end()
        elif mode in TREE_MODES:
            await self.tree.feed(mode, chunk)
        return self.handler.take()


def _uuid(text: str) -> Optional[uuid.UUID]:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
