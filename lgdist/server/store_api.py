"""``/store``: the long-term memory store the workers' nodes share
(``lgdist.distributed.store``), over the API — put, get, delete, search
items and list namespaces, as ``langgraph-sdk``'s ``client.store`` calls
them."""

from __future__ import annotations

from typing import Any, Optional, Union

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from lgdist.errors import ApiError

router = APIRouter(tags=["store"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PutItem(_Body):
    namespace: list[str]
    key: str = Field(min_length=1)
    value: dict
    index: Union[bool, list[str], None] = None
    ttl: Optional[float] = None


class DeleteItem(_Body):
    namespace: list[str] = Field(default_factory=list)
    key: str = Field(min_length=1)


class SearchItems(_Body):
    namespace_prefix: list[str] = Field(default_factory=list)
    filter: Optional[dict] = None
    limit: int = Field(default=10, ge=1, le=10_000)
    offset: int = Field(default=0, ge=0)
    query: Optional[str] = None
    refresh_ttl: Optional[bool] = None


class ListNamespaces(_Body):
    prefix: Optional[list[str]] = None
    suffix: Optional[list[str]] = None
    max_depth: Optional[int] = Field(default=None, ge=1)
    limit: int = Field(default=100, ge=1, le=10_000)
    offset: int = Field(default=0, ge=0)


def _store(request: Request) -> Any:
    return request.app.state.service.backend.store


def _namespace(parts: list[str]) -> tuple[str, ...]:
    if any(not p or "." in p for p in parts):
        raise ApiError(422, "namespace labels must be non-empty and contain no '.'")
    return tuple(parts)


@router.put("/store/items", status_code=204)
async def put_item(body: PutItem, request: Request) -> Response:
    store = _store(request)
    index: Any = None if body.index is None or body.index is True else body.index
    kwargs = {"ttl": body.ttl} if body.ttl is not None else {}
    await run_in_threadpool(lambda: store.put(_namespace(body.namespace), body.key, body.value, index, **kwargs))
    return Response(status_code=204)


@router.get("/store/items")
async def get_item(request: Request, key: str, namespace: str = "", refresh_ttl: Optional[bool] = None) -> dict:
    store = _store(request)
    parts = tuple(p for p in namespace.split(".") if p)
    item = await run_in_threadpool(lambda: store.get(parts, key, refresh_ttl=refresh_ttl))
    if item is None:
        raise ApiError(404, f"Item {key!r} not found in namespace {list(parts)}")
    return item.dict()


@router.delete("/store/items", status_code=204)
async def delete_item(body: DeleteItem, request: Request) -> Response:
    store = _store(request)
    await run_in_threadpool(store.delete, _namespace(body.namespace), body.key)
    return Response(status_code=204)


@router.post("/store/items/search")
async def search_items(body: SearchItems, request: Request) -> dict:
    store = _store(request)
    items = await run_in_threadpool(
        lambda: store.search(
            tuple(body.namespace_prefix), query=body.query, filter=body.filter, limit=body.limit,
            offset=body.offset, refresh_ttl=body.refresh_ttl,
        )
    )  # fmt: skip
    return {"items": [i.dict() for i in items]}


@router.post("/store/namespaces")
async def list_namespaces(body: ListNamespaces, request: Request) -> dict:
    store = _store(request)
    found = await run_in_threadpool(
        lambda: store.list_namespaces(
            prefix=tuple(body.prefix) if body.prefix else None, suffix=tuple(body.suffix) if body.suffix else None,
            max_depth=body.max_depth, limit=body.limit, offset=body.offset,
        )
    )  # fmt: skip
    return {"namespaces": [list(ns) for ns in found]}
