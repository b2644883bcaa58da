"""``/threads``: create, read, search, copy and delete threads; read and
update their state and history."""

from __future__ import annotations

import uuid
from typing import Any, Optional

from fastapi import APIRouter, Request, Response

from lgdist.errors import ApiError
from lgdist.server.schemas import HistoryRequest, StateAtCheckpoint, StateUpdate, ThreadCount, ThreadCreate, ThreadPatch, ThreadSearch
from lgdist.server.store import contains

router = APIRouter(tags=["threads"])


def _service(request: Request) -> Any:
    return request.app.state.service


@router.post("/threads")
def create(body: ThreadCreate, request: Request) -> dict:
    service = _service(request)
    thread_id = body.thread_id or str(uuid.uuid4())
    metadata = dict(body.metadata or {})
    if body.graph_id:
        service.resolve_graph(body.graph_id)
        metadata.setdefault("graph_id", body.graph_id)
    if not service.store.create(thread_id, metadata):
        if body.if_exists == "do_nothing":
            return service.thread_json(service.thread_record(thread_id))
        raise ApiError(409, f"Thread {thread_id} already exists")
    return service.thread_json(service.thread_record(thread_id))


@router.get("/threads/{thread_id}")
def get(thread_id: str, request: Request) -> dict:
    service = _service(request)
    return service.thread_json(service.thread_record(thread_id))


@router.patch("/threads/{thread_id}")
def patch(thread_id: str, body: ThreadPatch, request: Request) -> dict:
    service = _service(request)
    service.thread_record(thread_id)
    service.store.merge_metadata(thread_id, body.metadata)
    return service.thread_json(service.thread_record(thread_id))


@router.delete("/threads/{thread_id}", status_code=204)
def delete(thread_id: str, request: Request) -> Response:
    _service(request).delete_thread(thread_id)
    return Response(status_code=204)


def _search(service: Any, body: Any, limit: Optional[int], offset: int, sort_by: str, sort_order: str) -> list[dict]:
    records = service.store.search(
        metadata=body.metadata, status=body.status, ids=getattr(body, "ids", None),
        limit=None if body.values else limit, offset=0 if body.values else offset,
        sort_by=sort_by, sort_order=sort_order,
    )  # fmt: skip
    threads = [service.thread_json(r) for r in records]
    if body.values:
        threads = [t for t in threads if contains(t["values"], body.values)]
        threads = threads[offset:]
        threads = threads[:limit] if limit is not None else threads
    return threads


@router.post("/threads/search")
def search(body: ThreadSearch, request: Request) -> list[dict]:
    return _search(_service(request), body, body.limit, body.offset, body.sort_by or "created_at", body.sort_order or "desc")


@router.post("/threads/count")
def count(body: ThreadCount, request: Request) -> int:
    return len(_search(_service(request), body, None, 0, "created_at", "desc"))


@router.post("/threads/{thread_id}/copy")
def copy(thread_id: str, request: Request) -> dict:
    return _service(request).copy_thread(thread_id)


@router.get("/threads/{thread_id}/state")
def get_state(thread_id: str, request: Request, subgraphs: bool = False) -> dict:
    return _service(request).state(thread_id, subgraphs=subgraphs)


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
def get_state_at(thread_id: str, checkpoint_id: str, request: Request, subgraphs: bool = False) -> dict:
    return _service(request).state(thread_id, checkpoint_id, subgraphs=subgraphs)


@router.post("/threads/{thread_id}/state/checkpoint")
def post_state_at(thread_id: str, body: StateAtCheckpoint, request: Request) -> dict:
    return _service(request).state(thread_id, body.checkpoint.checkpoint_id, subgraphs=body.subgraphs)


@router.post("/threads/{thread_id}/state")
def update_state(thread_id: str, body: StateUpdate, request: Request) -> dict:
    checkpoint_id = body.checkpoint_id or (body.checkpoint.checkpoint_id if body.checkpoint else None)
    return _service(request).update_state(thread_id, body.values, body.as_node, checkpoint_id)


@router.post("/threads/{thread_id}/history")
def history(thread_id: str, body: HistoryRequest, request: Request) -> list[dict]:
    before = body.before if isinstance(body.before, str) or body.before is None else body.before.checkpoint_id
    checkpoint_id = body.checkpoint.checkpoint_id if body.checkpoint else None
    return _service(request).history(
        thread_id, limit=body.limit, before=before, metadata=body.metadata, checkpoint_id=checkpoint_id
    )


@router.get("/threads/{thread_id}/history")
def history_get(thread_id: str, request: Request, limit: int = 10, before: Optional[str] = None) -> list[dict]:
    if limit < 1:
        raise ApiError(422, "limit must be at least 1")
    return _service(request).history(thread_id, limit=limit, before=before, metadata=None, checkpoint_id=None)
