"""``/assistants``: each registered graph is one assistant (read-only)."""

from __future__ import annotations

import typing
from typing import Any, Optional

from fastapi import APIRouter, Request

from lgdist.errors import ApiError
from lgdist.server.schemas import AssistantCount, AssistantSearch
from lgdist.server.store import contains

router = APIRouter(tags=["assistants"])


def _service(request: Request) -> Any:
    return request.app.state.service


def _matching(service: Any, graph_id: Optional[str], metadata: Optional[dict], name: Optional[str] = None) -> list[dict]:
    found = [service.assistant(g) for g in service.graph_names()]
    if graph_id:
        found = [a for a in found if a["graph_id"] == graph_id]
    if name:
        found = [a for a in found if a["name"] == name]
    if metadata:
        found = [a for a in found if contains(a["metadata"], metadata)]
    return found


@router.post("/assistants/search")
def search(body: AssistantSearch, request: Request) -> list[dict]:
    found = _matching(_service(request), body.graph_id, body.metadata, body.name)
    return found[body.offset : body.offset + body.limit]


@router.post("/assistants/count")
def count(body: AssistantCount, request: Request) -> int:
    return len(_matching(_service(request), body.graph_id, body.metadata))


@router.get("/assistants/{assistant_id}")
def get(assistant_id: str, request: Request) -> dict:
    service = _service(request)
    return service.assistant(service.resolve_graph(assistant_id))


@router.get("/assistants/{assistant_id}/graph")
def graph(assistant_id: str, request: Request, xray: Any = False) -> dict:
    """The registered graph's drawable structure, as ``get_graph(xray=).to_json()``
    (what LangGraph's server returns)."""
    service = _service(request)
    compiled = service.compiled(service.resolve_graph(assistant_id))
    return compiled.get_graph(xray=_xray(xray)).to_json()


def _xray(value: Any) -> Any:
    """``xray`` arrives as a query string: "true"/"false" or a depth."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered.isdigit():
            return int(lowered)
        raise ApiError(422, f"xray must be true, false or a depth, not {value!r}")
    return value


def _json_schema(schema: Any) -> Optional[dict]:
    """The JSON schema of a state type; per key when pydantic cannot take
    the type whole (a ``typing.TypedDict`` on Python < 3.12)."""
    if schema is None:
        return None
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(schema).json_schema()
    except Exception:  # noqa: BLE001 - described key by key below
        pass
    try:
        hints = typing.get_type_hints(schema)
    except Exception:  # noqa: BLE001
        hints = {}
    properties = {}
    for key, hint in hints.items():
        try:
            properties[key] = TypeAdapter(hint).json_schema()
        except Exception:  # noqa: BLE001 - a value type pydantic cannot describe
            properties[key] = {}
    out = {"title": getattr(schema, "__name__", "State"), "type": "object", "properties": properties}
    required = sorted(getattr(schema, "__required_keys__", ()) or ())
    if required:
        out["required"] = required
    return out


@router.get("/assistants/{assistant_id}/schemas")
def schemas(assistant_id: str, request: Request) -> dict:
    service = _service(request)
    name = service.resolve_graph(assistant_id)
    builder = service.compiled(name).builder
    state = getattr(builder, "state_schema", None)
    return {
        "graph_id": name,
        "input_schema": _json_schema(getattr(builder, "input_schema", state)),
        "output_schema": _json_schema(getattr(builder, "output_schema", state)),
        "state_schema": _json_schema(state),
        "config_schema": _json_schema(getattr(builder, "config_schema", None)),
        "context_schema": _json_schema(getattr(builder, "context_schema", None)),
    }


@router.get("/assistants/{assistant_id}/subgraphs")
@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
def subgraphs(assistant_id: str, request: Request, namespace: Optional[str] = None, recurse: bool = False) -> dict:
    service = _service(request)
    compiled = service.compiled(service.resolve_graph(assistant_id))
    out: dict = {}
    for node_name, node in compiled.spec.nodes.items():
        sub = getattr(node, "subgraph", None)
        if sub is None or (namespace and node_name != namespace):
            continue
        builder = getattr(sub, "builder", None)
        state = getattr(builder, "state_schema", None)
        out[node_name] = {
            "graph_id": node_name,
            "input_schema": _json_schema(getattr(builder, "input_schema", state)),
            "output_schema": _json_schema(getattr(builder, "output_schema", state)),
            "state_schema": _json_schema(state),
            "config_schema": None,
            "context_schema": _json_schema(getattr(builder, "context_schema", None)),
        }
    return out


@router.post("/assistants")
@router.patch("/assistants/{assistant_id}")
@router.delete("/assistants/{assistant_id}")
def read_only(request: Request) -> None:
    raise ApiError(
        405, "Assistants are the graphs registered with LGDIST_GRAPHS; they cannot be created or changed over the API"
    )
