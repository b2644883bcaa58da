"""``/runs`` and ``/threads/{thread_id}/runs``: create runs (streamed over
SSE, waited for, or in the background), list, get, join, cancel, delete."""

from __future__ import annotations

import functools
import json
from typing import Any, AsyncIterator, Optional

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from lgdist.distributed.lifecycle import ACTIVE
from lgdist.distributed.runs import Run
from lgdist.errors import ApiError
from lgdist.server.schemas import CancelMany, RunCreate
from lgdist.server.streaming import EventTranslator, RunTreeEvents, api_events, metadata_event

router = APIRouter(tags=["runs"])


def _service(request: Request) -> Any:
    return request.app.state.service


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _locations(run: Run) -> dict:
    base = f"/threads/{run.thread_id}/runs/{run.run_id}"
    return {"Location": f"{base}/stream", "Content-Location": base}


def _translator(run: Run, modes: Optional[list[str]] = None) -> EventTranslator:
    api = run.options.get("api") or {}
    modes = [m for m in modes or [] if m]
    requested = modes or api.get("stream_modes") or run.options.get("stream_modes") or ["values"]
    return EventTranslator(list(requested), subgraphs=bool(api.get("subgraphs")))


def _tree(run: Run, translator: EventTranslator) -> Optional[RunTreeEvents]:
    """The ``events`` mode's run tree, when it was asked for."""
    if "events" not in translator.requested:
        return None
    api = run.options.get("api") or {}
    metadata = {"graph_id": run.graph, "assistant_id": api.get("assistant_id"), "run_id": run.run_id, "thread_id": run.thread_id}
    return RunTreeEvents(run, {**(api.get("metadata") or {}), **metadata})


def _sse(service: Any, run: Run, translator: EventTranslator, *, cancel_on_disconnect: bool, skip: int = 0) -> EventSourceResponse:
    async def events() -> AsyncIterator[dict]:
        finished = False
        try:
            if skip == 0:
                yield {"event": "metadata", "data": _dumps(metadata_event(run.run_id)), "id": "0"}
            async for seq, event, data in api_events(service, run.run_id, translator, skip=skip, tree=_tree(run, translator)):
                yield {"event": event, "data": _dumps(data), "id": str(seq)}
            finished = True
        finally:
            with anyio.CancelScope(shield=True):
                if finished and not translator.thread_deleted:
                    await run_in_threadpool(service.finish_temporary, run)
                elif cancel_on_disconnect:
                    await run_in_threadpool(functools.partial(service.cancel, run.run_id, missing_ok=True))

    return EventSourceResponse(events(), headers=_locations(run), ping=15, sep="\n")


async def _create(request: Request, thread_id: Optional[str], body: RunCreate, *, answered: bool = False) -> Run:
    """``answered``: this request streams or waits for the run, so a
    stateless run's thread can go with the run's end (a background run's
    stays, for a later join)."""
    service = _service(request)
    return await run_in_threadpool(functools.partial(service.create_run, thread_id, body, answered=answered))


async def _wait(service: Any, run: Run, translator: EventTranslator) -> Any:
    async for _ in api_events(service, run.run_id, translator):
        pass
    return translator.output()


async def _wait_response(service: Any, run: Run) -> JSONResponse:
    """The run's output. A stateless run's thread went with the run's end
    (the worker's last transaction); if it did not (a cancelled run), it is
    deleted after the answer is sent (off the caller's latency)."""
    translator = _translator(run, ["values"])
    output = await _wait(service, run, translator)
    cleanup = None if translator.thread_deleted else BackgroundTask(service.finish_temporary, run)
    return JSONResponse(jsonable_encoder(output), headers=_locations(run), background=cleanup)


# -- creating runs ------------------------------------------------------------------------


@router.post("/threads/{thread_id}/runs/stream")
async def stream(thread_id: str, body: RunCreate, request: Request) -> EventSourceResponse:
    run = await _create(request, thread_id, body)
    return _sse(_service(request), run, _translator(run), cancel_on_disconnect=body.on_disconnect == "cancel")


@router.post("/runs/stream")
async def stream_stateless(body: RunCreate, request: Request) -> EventSourceResponse:
    run = await _create(request, None, body, answered=True)
    return _sse(_service(request), run, _translator(run), cancel_on_disconnect=body.on_disconnect != "continue")


@router.post("/threads/{thread_id}/runs/wait")
async def wait(thread_id: str, body: RunCreate, request: Request) -> JSONResponse:
    return await _wait_response(_service(request), await _create(request, thread_id, body))


@router.post("/runs/wait")
async def wait_stateless(body: RunCreate, request: Request) -> JSONResponse:
    return await _wait_response(_service(request), await _create(request, None, body, answered=True))


@router.post("/threads/{thread_id}/runs")
async def create(thread_id: str, body: RunCreate, request: Request, response: Response) -> dict:
    run = await _create(request, thread_id, body)
    response.headers.update(_locations(run))
    return _service(request).run_json(run)


@router.post("/runs")
async def create_stateless(body: RunCreate, request: Request, response: Response) -> dict:
    run = await _create(request, None, body)
    response.headers.update(_locations(run))
    return _service(request).run_json(run)


@router.post("/runs/batch")
async def create_batch(bodies: list[RunCreate], request: Request) -> list[dict]:
    return [_service(request).run_json(await _create(request, None, b)) for b in bodies]


# -- reading runs ----------------------------------------------------------------------------


@router.get("/threads/{thread_id}/runs")
def list_runs(
    thread_id: str, request: Request, limit: int = Query(10, ge=1, le=10_000), offset: int = Query(0, ge=0),
    status: Optional[str] = None,
) -> list[dict]:  # fmt: skip
    service = _service(request)
    service.thread_record(thread_id)
    runs = [service.run_json(r) for r in service.runs.list_runs(thread_id, limit=limit + offset + 1000)]
    if status:
        runs = [r for r in runs if r["status"] == status]
    return runs[offset : offset + limit]


@router.get("/threads/{thread_id}/runs/{run_id}")
def get_run(thread_id: str, run_id: str, request: Request) -> dict:
    service = _service(request)
    return service.run_json(service.get_run(thread_id, run_id))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
def delete_run(thread_id: str, run_id: str, request: Request) -> Response:
    service = _service(request)
    run = service.get_run(thread_id, run_id)
    if run.status in ACTIVE:
        raise ApiError(409, f"Run {run_id} is {run.status}; cancel it before deleting it")
    service.store.delete_run(run_id)
    return Response(status_code=204)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join(thread_id: str, run_id: str, request: Request) -> Any:
    service = _service(request)
    run = await run_in_threadpool(service.get_run, thread_id, run_id)
    return await _wait_response(service, run)


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    thread_id: str, run_id: str, request: Request,
    stream_mode: Optional[list[str]] = Query(None), cancel_on_disconnect: bool = False,
    last_event_id: Optional[str] = Header(None),
) -> EventSourceResponse:  # fmt: skip
    service = _service(request)
    run = await run_in_threadpool(service.get_run, thread_id, run_id)
    skip = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return _sse(service, run, _translator(run, stream_mode), cancel_on_disconnect=cancel_on_disconnect, skip=skip)


@router.get("/threads/{thread_id}/stream")
async def thread_stream(
    thread_id: str, request: Request, stream_mode: Optional[list[str]] = Query(None),
    last_event_id: Optional[str] = Header(None),
) -> Response:  # fmt: skip
    """The events of the thread's active run (else its latest run)."""
    service = _service(request)
    rec = await run_in_threadpool(service.thread_record, thread_id)
    run = None
    if rec["active_run_id"]:
        run = await run_in_threadpool(service.runs.get_run, rec["active_run_id"])
    if run is None:
        latest = await run_in_threadpool(service.runs.list_runs, thread_id, 1)
        run = latest[0] if latest else None
    if run is None:
        return Response(status_code=204)
    skip = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return _sse(service, run, _translator(run, stream_mode), cancel_on_disconnect=False, skip=skip)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel(
    thread_id: str, run_id: str, request: Request, wait: bool = False,
    action: str = Query("interrupt", pattern="^(interrupt|rollback)$"),
) -> Response:  # fmt: skip
    service = _service(request)
    run = await run_in_threadpool(service.get_run, thread_id, run_id)
    await run_in_threadpool(service.cancel, run_id, action)
    if wait:
        translator = _translator(run, ["values"])
        await _wait(service, run, translator)
        if not translator.thread_deleted:
            await run_in_threadpool(service.finish_temporary, run)
    return Response(status_code=202 if not wait else 204)


@router.post("/runs/cancel", status_code=204)
async def cancel_many(
    body: CancelMany, request: Request, action: str = Query("interrupt", pattern="^(interrupt|rollback)$")
) -> Response:
    service = _service(request)
    run_ids = list(body.run_ids or [])
    if body.thread_id and not run_ids:
        runs = await run_in_threadpool(service.runs.list_runs, body.thread_id)
        run_ids = [r.run_id for r in runs if r.status in ACTIVE and (body.status in (None, "all", r.status))]
    for run_id in run_ids:
        await run_in_threadpool(service.cancel, run_id, action)
    return Response(status_code=204)
